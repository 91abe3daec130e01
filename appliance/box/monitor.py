"""``groovebox monitor``: the running box live in a terminal (over SSH on stage).

It asks the control socket for the status a few times a second and draws it with rich: the
groove filling, the pattern with its velocities and the play head, tempo and clock, knobs,
freeze, inference and output timing, ports, and why nothing plays when nothing does. It only
reads the status snapshot the box already builds (outside the player's locks), one small
request at a time, so watching never slows the player. Ctrl-C leaves.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from appliance.box.control_socket import ControlError, request
from appliance.box.diagnose import clock_trouble, heard_back_trouble

STEPS, STEPS_PER_BEAT, STEPS_PER_BAR = 32, 4, 16
LEVELS = " ▁▂▃▄▅▆▇█"
KNOBS = (("density", "density", 1.0), ("variation", "temperature", 2.0),
         ("humanise", "humanise", 2.0), ("velocity", "velocity_scale", 2.0))


def _cell(velocity: float | None, here: bool) -> Text:
    """One step: a bar as tall as the velocity; the play head's column is lit."""
    style = "on grey23" if here else ""
    if velocity is None:
        return Text("•", style=f"bold white {style}") if here else Text("·", style="grey35")
    level = max(1, min(len(LEVELS) - 1, round(velocity * (len(LEVELS) - 1))))
    colour = "green" if velocity < 0.45 else "yellow" if velocity < 0.8 else "red"
    return Text(LEVELS[level], style=f"bold {colour} {style}".strip())


def _row(label: str, cells: dict[int, float], step: int | None) -> Text:
    line = Text(f"{label:<11}")
    for s in range(STEPS):
        if s and s % STEPS_PER_BAR == 0:
            line.append("│", style="grey50")
        elif s and s % STEPS_PER_BEAT == 0:
            line.append(" ")
        line.append_text(_cell(cells.get(s), s == step))
    return line


def _ruler() -> Text:
    line = Text(" " * 11, style="grey50")
    for s in range(STEPS):
        if s and s % STEPS_PER_BAR == 0:
            line.append("│", style="grey50")
        elif s and s % STEPS_PER_BEAT == 0:
            line.append(" ")
        line.append(str(1 + (s % STEPS_PER_BAR) // STEPS_PER_BEAT) if s % STEPS_PER_BEAT == 0
                    else " ", style="grey50")
    return line


def _knob(value: float, top: float, width: int = 12) -> str:
    filled = max(0, min(width, round(value / top * width)))
    return "█" * filled + "░" * (width - filled)


def _ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "–"


def frame(status: dict[str, Any]) -> Group:
    """One screen of the monitor, from one status answer."""
    step = status.get("step") if status.get("running", False) else None
    return Group(*_header(status), *_grid(status, step), Text(""), _numbers(status), _ports(status))


def _header(status: dict[str, Any]) -> list[Any]:
    running = status.get("running", False)
    head = Text()
    head.append("groovebox  ", style="bold")
    if status.get("engine", {}).get("waiting_for"):   # a master clock may run on between songs
        head.append("◆ waiting", style="bold yellow")
    elif running:
        head.append("▶ playing", style="bold green")
    else:
        head.append("■ stopped", style="bold red")
    head.append(f"   {status.get('bpm', 0):.1f} BPM   clock {status.get('clock_source', '?')}"
                f" ({status.get('clock_mode', '?')})   step {status.get('step', 0) + 1:>2}/32   ")
    frozen = status.get("frozen")
    head.append("FREEZE" if frozen else "freeze off", style="bold cyan reverse" if frozen else "grey50")
    if status.get("engine", {}).get("heard_on_the_eighths"):
        head.append("   16ths heard on the 8ths", style="grey70")
    parts: list[Any] = [head]
    counts = clock_trouble(status.get("clock_counts") or {})
    if counts:
        parts.append(Text(f"MIDI clock: {counts}", style="yellow"))
    thru = heard_back_trouble(int(status.get("heard_back") or 0))
    if thru:
        parts.append(Text(f"MIDI thru: {thru}", style="yellow"))
    for reason in status.get("why_silent") or []:
        parts.append(Text(f"silent: {reason}", style="bold red"))
    if status.get("state"):
        parts.append(Text(str(status["state"]), style="yellow"))
    keyboard = status.get("keyboard")
    if keyboard and not status.get("why_silent"):
        parts.append(Text(keyboard, style="yellow"))
    return parts


def _grid(status: dict[str, Any], step: int | None) -> list[Text]:
    grid = [Text(""), _ruler()]
    groove = {int(s): float(v) for s, v, _offset in status.get("groove", [])}
    grid.append(_row("groove", groove, step))
    grid.append(Text(""))
    voices = status.get("voices", [])
    cells: list[dict[int, float]] = [{} for _ in voices]
    for s, v, velocity, _offset in status.get("pattern", []):
        if 0 <= v < len(cells):
            cells[v][int(s)] = float(velocity)
    for name, row in zip(voices, cells):
        grid.append(_row(name, row, step))
    return grid


def _numbers(status: dict[str, Any]) -> Table:
    engine = status.get("engine", {})
    table = Table.grid(padding=(0, 3))
    table.add_column()
    table.add_column()
    controls = status.get("controls", {})
    knobs = Text()
    for label, key, top in KNOBS:
        value = controls.get(key)
        if isinstance(value, (int, float)):
            knobs.append(f"{label:<9} {_knob(float(value), top)} {value:4.2f}\n")
    style, amount = controls.get("style"), controls.get("style_amount")
    if isinstance(style, str) and isinstance(amount, (int, float)):   # "none" too: the layout stays still
        knobs.append(f"{'style':<9} {style[:12]:<12} {amount:4.2f}\n")
    timing = status.get("output_timing_ms") or {}
    numbers = Text()
    numbers.append(f"inference  p50 {_ms(engine.get('latency_ms_p50'))} ms  "
                   f"p99 {_ms(engine.get('latency_ms_p99'))} ms\n")
    numbers.append(f"patterns   {engine.get('generations', 0)}  misses {engine.get('misses', 0)}  "
                   f"late drops {engine.get('late_drops', 0)}\n")
    numbers.append(f"notes out  p50 {_ms(timing.get('p50'))} ms  p99 {_ms(timing.get('p99'))} ms  "
                   f"max {_ms(timing.get('max'))} ms off schedule\n")
    numbers.append(f"player     {'real-time' if status.get('realtime') else 'normal priority'}  "
                   f"inputs heard {status.get('inputs_seen', 0)}")
    table.add_row(knobs, numbers)
    return table


def _ports(status: dict[str, Any]) -> Text:
    ports = status.get("ports", {})
    midi = status.get("midi", {})
    lines = Text()
    lines.append(f"in   {', '.join(ports.get('inputs', [])) or 'none'}\n")
    lines.append(f"out  {', '.join(ports.get('outputs', [])) or 'none'}\n")
    if status.get("din"):
        lines.append(f"DIN  {status['din']}\n")
    for hint in midi.get("connect", []):
        lines.append(f"     {hint}\n", style="grey62")
    return lines


def waiting_frame(error: str) -> Text:
    return Text(f"groovebox monitor: {error}\n(trying again; Ctrl-C leaves)", style="bold red")


def _leave(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    """``groovebox monitor [--socket PATH] [--rate HZ] [--once]``."""
    # Ctrl-C, a kill, or the SSH session going away all leave cleanly (the terminal restored),
    # even when started from something that ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _leave)
    console = Console()
    rate = max(0.5, min(float(getattr(args, "rate", 4.0)), 20.0))
    socket_path = getattr(args, "socket", None)

    def screen() -> Any:
        """One screen of the box's status; ControlError when there is none to show."""
        status = request("status", socket_path, timeout=2.0)["status"]
        try:
            return frame(status)
        except (AttributeError, TypeError, KeyError, ValueError):
            raise ControlError("the box's status is not one this groovebox can read (another "
                               "program on its socket, or another groovebox version?)") from None

    def fetch() -> Any:
        try:
            return screen()
        except ControlError as exc:
            return waiting_frame(str(exc))

    terminal = sys.stdout.isatty()     # (not rich's is_terminal: FORCE_COLOR makes a pipe one)
    if not getattr(args, "once", False) and not terminal:
        sys.stderr.write("groovebox monitor: not a terminal (over SSH: ssh -t); printing one screen\n")
    if getattr(args, "once", False) or not terminal:
        try:
            console.print(screen())
        except ControlError as exc:     # as `groovebox status` says it, on stderr, 2
            sys.stderr.write(f"groovebox monitor: {exc}\n")
            return 2
        return 0
    try:
        with Live(fetch(), console=console, screen=True, auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False) as live:
            while True:
                time.sleep(1.0 / rate)
                live.update(fetch(), refresh=True)
    except KeyboardInterrupt:
        return 0
