"""Provenance in Segue's files: every WAV and MIDI file a job writes says that it was generated, by which model
(and its licence), from which region (its SHA-256), with which seed and parameters. See docs/provenance.md.

- :mod:`engine.provenance.riff`: RIFF chunks and the BWF ``bext`` chunk (stdlib; the bridge's placement uses it)
- :mod:`engine.provenance.record`: the record and the settings (what to leave out; which key signs)
- :mod:`engine.provenance.ixml`, :mod:`engine.provenance.midi`: the ``iXML`` chunk; MIDI meta events
- :mod:`engine.provenance.signing`: C2PA manifests (``c2pa-python``, the ``provenance`` extra) and keys
- :mod:`engine.provenance.stamp`: stamping a finished job's files, and placement copies
- :mod:`engine.provenance.report`: what a file carries (``segue provenance FILE``)

No torch, no numpy: the bridge imports this with a remote engine.
"""
