"""Segue's engine: MIDI and audio generation, transcription, training, rendering, evaluation and the HTTP server.

The layers above use only its public modules (pyproject.toml's import contracts list them): :mod:`engine.api`
(the types and the ``Engine`` protocol; no torch), :mod:`engine.entrypoints`, :mod:`engine.process`,
:mod:`engine.errors`, :mod:`engine.atomic`, :mod:`engine.ownership`, :mod:`engine.environment` and the stdlib parts
of :mod:`engine.provenance`. docs/architecture.md draws the layers.
"""
