"""What to type to wire the box: connection hints with the real port names, for the log,
``groovebox status`` and ``make run``."""
from __future__ import annotations

import os
import re
import shlex
from typing import Sequence

from appliance.io.midi.backend import port_key

SEQ_DEVICE = "/dev/snd/seq"
_ALSA_ADDRESS = re.compile(r"(\d+:\d+)$")

NO_MIDI_SYSTEM = ("no MIDI system here: no ALSA sequencer ({seq} is missing: `sudo modprobe "
                  "snd-seq`) and no JACK server (`make run` starts one, or `jackd -d dummy &`; "
                  "install it with `sudo apt-get install jackd2`)")


def no_midi_system() -> str:
    """One line that says what to install or run when neither ALSA nor JACK answers."""
    return NO_MIDI_SYSTEM.format(seq=SEQ_DEVICE)


def alsa_sequencer_present() -> bool:
    return os.path.exists(SEQ_DEVICE)


def numbered(name: str, listed: Sequence[str]) -> str:
    """The name as the MIDI system lists it (ALSA: with its client:port numbers, which
    aconnect needs), else the name itself."""
    return next((n for n in listed if port_key(n) == name), name)


def _address(api: str, name: str) -> str:
    """How the connect tool names a port: JACK's full name, ALSA's client:port numbers."""
    if api == "alsa":
        found = _ALSA_ADDRESS.search(name.strip())
        if found:
            return found.group(1)
    return shlex.quote(name)


def connect_hints(api: str, box_in: str, box_out: str, sources: Sequence[str],
                  destinations: Sequence[str], heard: Sequence[str] = (),
                  played_to: Sequence[str] = ()) -> list[str]:
    """Lines that say which port to connect to which, and the command that does it.

    ``sources``/``destinations`` are the other clients' ports; ``heard``/``played_to`` the
    ones the box is connected to already (by its ``midi.inputs``/``midi.outputs`` patterns).
    On ALSA ``box_in``/``box_out`` should carry their numbers (see :func:`numbered`)."""
    tool = "jack_connect" if api == "jack" else "aconnect"
    sources = [n for n in sources if "midi through" not in n.lower()]          # ALSA's loopback
    destinations = [n for n in destinations if "midi through" not in n.lower()]
    lines: list[str] = []
    into, out_of = _address(api, box_in), _address(api, box_out)
    if heard:
        lines.append(f"keyboard: listening to {', '.join(heard)} (and {box_in})")
    elif sources:
        lines.append(f"keyboard: play into {box_in}: {tool} {_address(api, sources[0])} {into}"
                     + (f"  (MIDI sources here: {', '.join(sources)})" if len(sources) > 1 else ""))
    else:
        lines.append(f"keyboard: no MIDI source yet; plug one in (the box connects it), or "
                     f"{tool} <your keyboard's port> {into}")
    if played_to:
        lines.append(f"drums: playing to {', '.join(played_to)} (and {box_out})")
    elif destinations:
        lines.append(f"drums: connect {box_out} to your synth: {tool} {out_of} "
                     f"{_address(api, destinations[0])}"
                     + (f"  (MIDI inputs here: {', '.join(destinations)})"
                        if len(destinations) > 1 else ""))
    else:
        synth = ("fluidsynth -a jack -j -m jack /usr/share/sounds/sf2/FluidR3_GM.sf2"
                 if api == "jack" else "fluidsynth -a pulseaudio -m alsa_seq "
                 "/usr/share/sounds/sf2/FluidR3_GM.sf2")
        lines.append(f"drums: nothing listens yet; start a GM soft synth (e.g. `{synth}`) and "
                     f"{tool} {out_of} <its MIDI input>")
    return lines
