"""MIDI adapters at the edge: rtmidi ports with hotplug (USB, JACK), DIN over a UART.

The core never imports this package; the service hands these objects in.
"""
from .parser import MidiEncoder, MidiParser

__all__ = ["MidiEncoder", "MidiParser"]
