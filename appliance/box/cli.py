"""groovebox run | render | status | monitor | freeze | clear | resample | prior | learn | config check"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.core.engine import EngineSettings

log = logging.getLogger("groovebox")

MODEL_NAME = "groove-vae"

#: the settings' names in their range errors → the render options that set them
RENDER_FLAGS = {"density": "--density", "temperature": "--variation", "velocity_scale": "--velocity-scale",
                "humanise": "--humanise", "max_hits_per_voice": "--max-hits", "forget_passes": "--forget",
                "forget_once": "--forget-once", "section_change": "--section-change", "rest_thin": "--rest-thin",
                "drift": "--drift", "dynamics": "--dynamics", "mf_velocity": "--mf-velocity",
                "crash_every": "--crash-every", "fill_every": "--fill-every", "swap_at": "--swap-at",
                "split_note": "--split-note",
                "style_amount": "--style-amount"}


def default_model_dir() -> Path:
    """$GROOVEBOX_MODEL_DIR; else models/ of the checkout the package runs from; else the
    installed box's: `make install` puts the venv in $PREFIX/.venv and the model in
    $PREFIX/models (the package itself then sits in the venv's site-packages)."""
    if os.environ.get("GROOVEBOX_MODEL_DIR"):
        return Path(os.environ["GROOVEBOX_MODEL_DIR"])
    checkout = Path(__file__).resolve().parents[2] / "models" / MODEL_NAME
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix).parent / "models" / MODEL_NAME


def _render(args: argparse.Namespace) -> int:
    from appliance.core import drummaps
    from appliance.core.engine import EngineSettings
    from appliance.core.generator import Controls, ModelError
    from appliance.core.render import RenderError, render

    if not 1 <= args.channel <= 16:
        log.error("render: --channel %d is not in 1..16", args.channel)
        return 2
    try:
        controls = Controls(density=args.density, temperature=args.variation, humanise=args.humanise,
                            velocity_scale=args.velocity_scale, max_hits_per_voice=args.max_hits,
                            style=args.style, style_amount=args.style_amount)
        notes, channels = drummaps.resolve(args.drum_map, channel=args.channel)
        settings = EngineSettings(swap_at=args.swap_at, notes=notes, channels=channels,
                                  pedal_hat=drummaps.pedal_hat(args.drum_map),
                                  forget_passes=args.forget, forget_once=args.forget_once,
                                  section_change=args.section_change,
                                  rest_thin=args.rest_thin, drift=args.drift, crash_every=args.crash_every,
                                  fill_every=args.fill_every, hear_eighths=args.hear_eighths,
                                  dynamics=args.dynamics, mf_velocity=args.mf_velocity,
                                  stop_time=args.stop_time, end_after_bars=args.end_after_bars,
                                  split_note=args.split_note)
    except (ValueError, KeyError) as error:
        log.error("render: %s", as_flags(str(error.args[0] if error.args else error)))
        return 2
    try:
        result = render(args.input, args.output, model_dir=args.model or default_model_dir(),
                        bpm=args.bpm, passes=args.passes, seed=args.seed, controls=controls,
                        settings=settings, precision=args.precision, downbeat_ticks=args.downbeat,
                        pickup_beats=args.pickup, max_rest_bars=args.max_rest,
                        ending=args.ending)
    except (RenderError, ModelError) as error:
        log.error("%s", error)
        return 2
    sys.stdout.write("the last 2-bar pattern the model made, before the box's phrasing (its crashes, fills and the "
                     "ending are in the file, not here; . - + * # soft to loud):\n")
    sys.stdout.write(result.pattern.grid() + "\n")
    sys.stdout.write(f"{result.bars} bars at {result.bpm:g} BPM rendered in {result.wall_seconds:.2f} s "
                     f"({result.bars_per_second:.0f} bars/s), {result.stats['generations']} patterns, "
                     f"{result.stats['misses']} missed swap points\n")
    sys.stdout.write(f"drums written to {args.output}\n")
    return 0


def as_flags(message: str) -> str:
    """A setting's range error in the words of the render option that sets it."""
    name, _, rest = message.partition(" ")
    return f"{RENDER_FLAGS[name]} {rest}" if name in RENDER_FLAGS else message


#: SIGHUPs that came while ``groovebox run`` was still importing (``hold_hups``)
early_hups: list[int] = []


def hold_hups() -> None:
    """Until the service's own handler takes over, a SIGHUP is remembered, not the end of the
    process (its default action; the imports take half a second, a fault harness's SIGHUP
    then killed the box): the service reloads once for it (``Service.install_signal_handlers``)."""
    signal.signal(signal.SIGHUP, lambda signum, _frame: early_hups.append(signum))


def _service(args: argparse.Namespace) -> int:
    """``groovebox run``: ends through ``service.exit_now``, whatever ends it."""
    hold_hups()
    from appliance.box import service
    code = 1
    try:
        code = service.main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logging.getLogger("appliance.box.service").exception("groovebox run failed")
    service.exit_now(code)


def _client(args: argparse.Namespace) -> int:
    from appliance.box import control_socket as control
    return control.client_main(args)


def _monitor(args: argparse.Namespace) -> int:
    from appliance.box import monitor
    return monitor.main(args)


def _config(args: argparse.Namespace) -> int:
    from appliance.box import config
    return config.check_main(args)


def _engine_defaults() -> "EngineSettings":
    from appliance.core.engine import EngineSettings
    return EngineSettings()


def _box_default(name: str) -> Any:
    """A loop setting as the box has it out of the box (config.yaml's default)."""
    from appliance.box.config import LoopConfig
    return getattr(LoopConfig(), name)


def _drum_map_names() -> list[str]:
    from appliance.core import drummaps
    return drummaps.names()


def _render_parser(commands: argparse._SubParsersAction) -> None:
    render = commands.add_parser("render", help="play a MIDI performance through the box, faster than real time")
    render.add_argument("input", type=Path, help="a keyboard performance (.mid)")
    render.add_argument("-o", "--output", type=Path, required=True, help="where the drum file goes")
    render.add_argument("--bpm", type=float, help="tempo (default: the file's first tempo, or 120)")
    render.add_argument("--passes", type=int, default=1,
                        help="play the performance this many times, overdubbing as a looper does; the file "
                             "holds every pass, one after the other, the keyboard's too (default 1)")
    render.add_argument("--seed", type=int, help="the same seed gives the same file (default: none, a new "
                        "drummer's take every run)")
    render.add_argument("--model", type=Path, help=f"model directory (default {default_model_dir()})")
    render.add_argument("--precision", choices=["int8", "fp32"], default="int8",
                        help="the model's arithmetic: int8 as the box runs it (default), or fp32")
    render.add_argument("--density", type=float, default=0.5,
                        help="0..1: 0.5 plays as many hits as GMD drummers, 0.25 half, 1 twice (default 0.5)")
    render.add_argument("--variation", type=float, default=1.0,
                        help="0..2: how far the drums stray from the pattern the model expects most: 0 plays "
                        "it, 2 strays far (default 1)")
    render.add_argument("--humanise", type=float, default=1.0,
                        help="0..2: the drums' timing, 0 on the grid, 1 as the model plays it (default 1)")
    render.add_argument("--velocity-scale", type=float, default=1.0,
                        help="0..2: the drums' velocities × this (default 1)")
    render.add_argument("--max-hits", type=int, default=32, help="0..32: most hits per voice in 2 bars (default 32)")
    _style_options(render)
    render.add_argument("--swap-at", choices=["step", "beat", "bar"], default="beat",
                        help="where a new pattern may start: the next beat (default), bar line or 16th step")
    _musician_options(render)
    _song_options(render)
    render.set_defaults(func=_render)


def _style_options(render: argparse.ArgumentParser) -> None:
    from appliance.core import styles
    render.add_argument("--style", choices=styles.NAMES, default=styles.NONE,
                        help="a style the drums lean toward, as GMD's drummers play it (default none: the "
                             "model's own reading of the groove)")
    render.add_argument("--style-amount", type=float, default=1.0, metavar="AMOUNT",
                        help=f"0..{styles.MAX_AMOUNT:g}: how far the drums lean toward the style (default 1)")


def _song_options(render: argparse.ArgumentParser) -> None:
    """How a song's silences and its end are played."""
    render.add_argument("--max-rest", type=int, default=8, metavar="BARS",
                        help="a silence longer than this, with more than 3 loops (6 bars) of it still to come, "
                             "stops the drums until the next note (the file keeps its length; the render skips "
                             "it); a shorter one is played through (0 = play through every silence; default 8)")
    render.add_argument("--end-after-bars", type=int, default=0, metavar="BARS",
                        help="bars of rest after which the song ends, as on the box "
                             f"(loop.end_after_bars, {_box_default('end_after_bars')} there): the drums stop, "
                             "and the next note starts the next song as its beat one, off the file's bars "
                             "if it is a pickup (default 0: every rest played through, on the file's bars)")
    render.add_argument("--ending", action=argparse.BooleanOptionalAction, default=True,
                        help="a last chord that rings on for two beats or more, or a short one on a bar line "
                             "or accented (the band's button), ends the song: crash and kick with it (and with "
                             "the band's cold stops a bar before it), then the drums stop; a part that just "
                             "stops ends at the bar line where it stopped (default on)")


def _musician_options(render: argparse.ArgumentParser) -> None:
    """The groove memory, the drum machine and where bar 1 falls."""
    from appliance.core.dynamics import MODEL_DYNAMICS
    memory = _engine_defaults()
    render.add_argument("--forget", type=int, default=memory.forget_passes, metavar="PASSES",
                        help="a step the player stopped playing is gone after this many passes "
                             f"(0 = never; default {memory.forget_passes})")
    render.add_argument("--forget-once", type=int, default=memory.forget_once, metavar="PASSES",
                        help="a step played in one pass only (a run, a flourish) is gone after this many "
                             f"passes that played its bar without it (0 = like any other; default {memory.forget_once})")
    render.add_argument("--section-change", type=float, default=memory.section_change, metavar="OVERLAP",
                        help="a pass sharing less than this (0..1) with the groove starts a new section "
                             f"(0 = off; default {memory.section_change:g})")
    render.add_argument("--rest-thin", type=float, default=memory.rest_thin, metavar="DENSITY",
                        help="density taken off per bar of rest: no note, no key held, a steady step of the "
                             "groove left out (0..1; default "
                             f"{memory.rest_thin:g})")
    render.add_argument("--drift", type=float, default=memory.drift,
                        help=f"how far the variation wanders each pass (0..1; default {memory.drift:g})")
    render.add_argument("--crash-every", type=int, default=memory.crash_every, metavar="BARS",
                        help="at most one crash this often, besides the ones marking the start, a new "
                             f"section and a return from a rest (0 = the model's crashes; default {memory.crash_every})")
    render.add_argument("--fill-every", type=int, default=memory.fill_every, metavar="BARS",
                        help="a pickup fill ends every phrase of this many bars, the big fill every second one "
                             f"and the bar before a new section (0 = the model's fills; default {memory.fill_every})")
    render.add_argument("--hear-eighths", action=argparse.BooleanOptionalAction, default=memory.hear_eighths,
                        help="hear busy, even, unaccented sixteenths (a pianist's arpeggios) accented on the "
                             "eighths, as a drummer does, not as a snare roll (default on)")
    render.add_argument("--stop-time", action=argparse.BooleanOptionalAction, default=memory.stop_time,
                        help="stop time: from the second short hit on a bar's 1 in a row, with nothing else "
                             "in its bar, the drums play the hits with you and lay out between them, and come "
                             "back in with your next note off the 1 (default on)")
    render.add_argument("--dynamics", type=float, default=memory.dynamics, metavar="LAW",
                        help="0..1: how closely the drums follow your level below your mezzo-forte: 0 one "
                             f"level, 1 all the way, {MODEL_DYNAMICS:g} about the model alone "
                             f"(default {memory.dynamics:g})")
    render.add_argument("--mf-velocity", type=int, default=memory.mf_velocity, metavar="VELOCITY",
                        help="the velocity you play mezzo-forte at: from there up the drums play their full "
                             f"level (a light keyboard: lower; default {memory.mf_velocity})")
    render.add_argument("--split-note", type=int, default=memory.split_note, metavar="NOTE",
                        help="notes below this one are the left hand's, for a model that hears the groove's "
                             "register (the shipped model does not yet; 0..128; 0 = never; default "
                             f"{memory.split_note}, the G below middle C)")
    render.add_argument("--drum-map", default="gm",
                        help="the drum machine's notes: " + ", ".join(_drum_map_names()) + " (default gm)")
    render.add_argument("--channel", type=int, default=10, help="drum channel 1..16 (default 10; "
                        "machines with a channel per part ignore it)")
    bar1 = render.add_mutually_exclusive_group()
    bar1.add_argument("--downbeat", type=int, metavar="TICK",
                      help="bar 1 falls at this tick of the input file (default: the bar line the first note "
                      "comes in on; a first note from the \"and\" of 2 on, or a run from beat 2 into the next, "
                      "is a pickup into it)")
    bar1.add_argument("--pickup", type=float, metavar="BEATS",
                      help="the first note is a pickup this many beats before bar 1 (default: as --downbeat's "
                      "default; a pickup recorded at the file's start needs this)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="groovebox", description=__doc__)
    top.add_argument("--log-level", default=os.environ.get("GROOVEBOX_LOG_LEVEL", "info"),
                     choices=["debug", "info", "warning", "error"])
    commands = top.add_subparsers(dest="command", required=True)

    _render_parser(commands)

    run = commands.add_parser("run", help="the live service")
    run.add_argument("--config", type=Path, help="YAML config (default /etc/groovebox/config.yaml)")
    run.add_argument("--midi-api", choices=["alsa", "jack"],
                     help="use this MIDI system whatever midi.api says (make run: JACK without ALSA)")
    run.set_defaults(func=_service)

    for name, text in (("status", "tempo, ports, groove and pattern of the running box"),
                       ("freeze", "toggle freeze"), ("clear", "clear the overdub"),
                       ("resample", "a new variation"), ("prior", "a pattern from scratch"),
                       ("end", "end the song: a crash and a kick on the next bar line, then wait for the next")):
        client = commands.add_parser(name, help=text)
        client.add_argument("--socket", type=Path, help="control socket of the running box")
        client.set_defaults(func=_client)
    monitor = commands.add_parser("monitor", help="the running box live: groove, pattern, tempo, "
                                  "knobs, timing, ports (Ctrl-C leaves)")
    monitor.add_argument("--socket", type=Path, help="control socket of the running box")
    monitor.add_argument("--rate", type=float, default=4.0, help="screens a second (default 4)")
    monitor.add_argument("--once", action="store_true", help="print one screen and leave")
    monitor.set_defaults(func=_monitor)
    learn = commands.add_parser("learn", help="bind the next CC or note the box sees to ACTION")
    learn.add_argument("action", help="e.g. freeze, clear, resample, density")
    learn.add_argument("--socket", type=Path)
    learn.add_argument("--no-wait", dest="wait", action="store_false",
                       help="return at once (default: wait until the box has learnt a control, and say which)")
    learn.set_defaults(func=_client)

    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="check a YAML config file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_config)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=args.log_level.upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
