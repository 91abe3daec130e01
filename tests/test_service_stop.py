"""How `groovebox run` ends: the USB ports left to the exit, DIN closed, and the process ended
through `service.exit_now` whatever ends it (the live stop: tests/test_service_signals.py)."""
from __future__ import annotations

import argparse

import pytest

from appliance.box import cli, service
from appliance.box.config import Config
from appliance.box.midi_routing import MidiRouting


class Part:
    """Stands in for MidiPorts or DinPort: records which way it was ended."""

    def __init__(self, calls: list[str], name: str) -> None:
        self.calls, self.name = calls, name

    def leave(self) -> None:
        self.calls.append(f"{self.name}.leave")

    def close(self) -> None:
        self.calls.append(f"{self.name}.close")


def test_the_stop_leaves_the_usb_ports_to_the_exit_and_closes_din() -> None:
    calls: list[str] = []
    routing = MidiRouting(Config(), transport=None, engine=None)   # type: ignore[arg-type]
    routing.ports, routing.din = Part(calls, "usb"), Part(calls, "din")   # type: ignore[assignment]
    routing.close()
    assert calls == ["usb.leave", "din.close"]


class Ended(Exception):
    pass


def boom(_args: argparse.Namespace) -> int:
    raise RuntimeError("a bug")


def leaves(code: object):
    def main(_args: argparse.Namespace) -> int:
        raise SystemExit(code)
    return main


@pytest.mark.parametrize("main, code", [
    (lambda _args: 0, 0),          # SIGTERM
    (lambda _args: 2, 2),          # a config that cannot start
    (boom, 1),                     # an exception out of main
    (leaves(3), 3),
    (leaves("why"), 1),
])
def test_groovebox_run_ends_through_exit_now_whatever_ends_it(monkeypatch, main, code) -> None:
    ended: list[int] = []

    def exit_now(value: int) -> None:
        ended.append(value)
        raise Ended

    monkeypatch.setattr(service, "exit_now", exit_now)
    monkeypatch.setattr(service, "main", main)
    with pytest.raises(Ended):
        cli._service(argparse.Namespace())
    assert ended == [code]


def test_an_exception_out_of_the_run_still_stops_the_box(monkeypatch) -> None:
    """All notes off, the state saved: Service.close runs however run_forever ends."""
    closed: list[bool] = []

    class Box:
        def __init__(self, config: Config, path: object, **kw: object) -> None: ...
        def install_signal_handlers(self) -> None: ...
        def start(self) -> None: ...
        def run_forever(self) -> int:
            raise RuntimeError("a bug")
        def close(self) -> None:
            closed.append(True)

    monkeypatch.setenv("GROOVEBOX_LOG_LEVEL", "info")   # leave the test process's logging alone
    monkeypatch.setattr(service, "Service", Box)
    monkeypatch.setattr(service, "_load_config", lambda path: (Config(), None))
    with pytest.raises(RuntimeError):
        service.main(argparse.Namespace(config=None, midi_api=None, log_level=None))
    assert closed == [True]


def test_run_without_a_config_file_finds_the_checkouts_model(tmp_path, monkeypatch, caplog) -> None:
    """A fault harness: `groovebox run` from a checkout, no /etc/groovebox/config.yaml: the
    defaults named /opt/groovebox/models, and the box did not start."""
    from pathlib import Path
    monkeypatch.setattr(service, "DEFAULT_CONFIG", tmp_path / "missing.yaml")
    config, path = service._load_config(None)
    assert path is None
    assert Path(config.model.dir) == cli.default_model_dir() and Path(config.model.dir).is_dir()
    assert any(config.model.dir in r.getMessage() for r in caplog.records)
