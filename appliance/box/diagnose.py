"""Why nothing is playing: the reasons ``groovebox status`` and ``monitor`` show, one line each."""
from __future__ import annotations

from dataclasses import dataclass, field

from appliance.io.midi.backend import port_key


@dataclass(frozen=True)
class PortsView:
    """What the MIDI side looks like, read from what the box already keeps (no MIDI calls)."""

    api: str = ""                                            #: "alsa", "jack" or "" (USB off)
    input_patterns: tuple[str, ...] = ()
    output_patterns: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()                            #: other clients' ports, last scan
    destinations: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()                             #: connected, "(virtual)" marked
    outputs: tuple[str, ...] = ()
    usb_off: str = ""                                        #: why USB MIDI is off
    din: str | None = None                                   #: DIN's state, None when disabled
    din_ok: bool = False
    hints: tuple[str, ...] = field(default=())               #: the connect commands


def _patterns(patterns: tuple[str, ...]) -> str:
    return ", ".join(repr(p) for p in patterns) if patterns else "'*' (every port)"


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"


def keyboard_problem(ports: PortsView) -> str:
    """'' when a keyboard can be heard, else what is wrong and what exists."""
    real_inputs = [n for n in ports.inputs if not n.endswith("(virtual)")]
    if real_inputs or ports.din_ok:
        return ""
    if not ports.api:
        return f"no keyboard can be heard: USB MIDI is off ({ports.usb_off or 'see the log'})" + (
            "" if ports.din is None else f" and DIN is {ports.din}")
    virtual = [n for n in ports.inputs if n.endswith("(virtual)")]
    line = (f"no keyboard seen: midi.inputs {_patterns(ports.input_patterns)} matched none of "
            f"the MIDI inputs here: {_listed(ports.sources)}" + ("" if ports.din is None else f"; DIN is {ports.din}"))
    if virtual:
        line += f"; or connect one to {virtual[0].replace(' (virtual)', '')}"
    return line


def _device(name: str) -> str:
    """A port's device, the same for its input and its output (ALSA gives both one name; JACK's
    a2j bridge marks them capture and playback)."""
    return port_key(name).replace("(capture)", "").replace("(playback)", "").strip()


def output_problem(ports: PortsView) -> str:
    """'' when the drums go somewhere (or may: the box's own port wired by hand to a port there
    is), else what is wrong and what exists."""
    real_outputs = [n for n in ports.outputs if not n.endswith("(virtual)")]
    if real_outputs or ports.din_ok:
        return ""
    keyboards = {_device(n) for n in ports.inputs if not n.endswith("(virtual)")}
    elsewhere = [n for n in ports.destinations
                 if "midi through" not in n.lower() and _device(n) not in keyboards]
    if ports.outputs and ports.api:       # only the box's own port: wired by hand, or to nothing
        if elsewhere:
            return ""
        own = ports.outputs[0].replace(" (virtual)", "")
        named = ("" if not ports.output_patterns or all(p.strip() in ("", "*") for p in ports.output_patterns)
                 else f"midi.outputs {_patterns(ports.output_patterns)} matched nothing, and ")
        return (f"the drums go nowhere: {named}nothing here to play to but the box's own port {own}"
                + (" and the keyboard's own MIDI in" if keyboards else "")
                + ": start a soft synth (a General MIDI kit on channel 10) or plug in a drum machine"
                + ("" if ports.din is None else f"; DIN is {ports.din}"))
    if not ports.api:
        return f"the drums go nowhere: USB MIDI is off ({ports.usb_off or 'see the log'})" + (
            "" if ports.din is None else f" and DIN is {ports.din}")
    return (f"the drums go nowhere: midi.outputs {_patterns(ports.output_patterns)} matched "
            f"none of the MIDI outputs here: {_listed(ports.destinations)}"
            + ("" if ports.din is None else f"; DIN is {ports.din}"))


def why_silent(*, running: bool, clock_mode: str, clock_source: str, waiting_for: str,
               frozen: bool, pattern_hits: int, groove_hits: int, density: float,
               ports: PortsView) -> list[str]:
    """Every reason the drum machine hears nothing now; [] while the drums play."""
    reasons: list[str] = []
    if waiting_for:
        reasons.append(waiting_for)
    elif not running:
        if clock_source == "external":
            reasons.append("the MIDI clock is stopped or not there yet: press play on the "
                           "clock source (tempo.clock: %s)" % clock_mode)
        else:
            reasons.append("the clock is stopped")
    if pattern_hits == 0 and not waiting_for:   # (while it waits the player has taken no pattern yet:
        # a state restored after a power cut, frozen, comes back with the first note)
        if frozen:
            reasons.append("frozen on an empty pattern: press freeze (groovebox freeze) to let "
                           "it change")
        else:
            reasons.append(f"the pattern is empty (density {density:.2f}"
                           f"{', nothing played yet' if not groove_hits else ''}): "
                           "turn density up or resample")
    out = output_problem(ports)
    if out:
        reasons.append(out)
    if reasons:
        keys = keyboard_problem(ports)
        if keys:
            reasons.append(keys)
    return reasons


def heard_back_trouble(count: int) -> str:
    """The box's own notes heard back through a MIDI thru, in words ("" when none were)."""
    if not count:
        return ""
    return (f"{count} of the box's own notes came back (a drum machine's MIDI thru or echo) "
            "and were left out of the groove: turn MIDI thru off on the drum machine")


def clock_trouble(counts: dict[str, int]) -> str:
    """What went wrong with the MIDI clock so far, in words ("" when nothing did)."""
    said = {"missed": "{} clocks missed (counted from the timing)",
            "extra": "{} extra clocks ignored (a MIDI loop?)",
            "other_input": "{} clock messages from a second input ignored"}
    return "; ".join(text.format(counts[key]) for key, text in said.items() if counts.get(key))
