"""Adapters at the edge: MIDI ports (rtmidi, JACK, DIN over UART), the GPIO panel and the MIDI map."""
