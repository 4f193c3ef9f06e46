"""Segue's Ableton Live Remote Script: send the selected clip to Segue, put Segue's results into the set.

Live loads this folder from its "MIDI Remote Scripts" folder and calls :func:`create_instance` when "Segue" is
chosen as a Control Surface. Standard library only (plus Live's own ``Live`` module): it imports nothing of
Segue's. See README.md next to this folder.
"""

from .segue_script import SegueScript


def create_instance(c_instance):
    return SegueScript(c_instance)
