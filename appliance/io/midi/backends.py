"""Which MIDI system the box talks to: ``open_backend(api, client_name)``."""
from __future__ import annotations

from appliance.io.midi.backend import PortBackend
from appliance.io.midi.rtmidi_backend import RtMidiBackend, resolve_api

__all__ = ["open_backend", "resolve_api"]


def open_backend(api: str, client_name: str = "groovebox") -> PortBackend:
    """``alsa`` (the Pi: rtmidi ports, quick to open), ``jack`` (two fixed ports, patched;
    see jack.py) or ``auto`` (JACK when a JACK server runs, else ALSA). Raises PortError
    with what to fix."""
    api = resolve_api(api)
    if api == "jack":
        from appliance.io.midi.jack import JackBackend
        return JackBackend(client_name)
    return RtMidiBackend("alsa", client_name)
