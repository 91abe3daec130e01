"""The core: the engine and everything it decides with. I/O-free: no rtmidi, gpiozero, serial, sockets or systemd."""
