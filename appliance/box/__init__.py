"""The service: wiring, control socket, config, state, reload, real-time priority and the CLI."""
