"""Segue's bridge: the DAW side (OSC, MIDI clock, capture), jobs on disk, placement and the command line."""
