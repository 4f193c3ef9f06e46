"""Audio regions as MIDI: :mod:`~engine.transcribe.region` runs basic-pitch's note model
(:mod:`~engine.transcribe.model`) on a region and writes the notes on its bar grid; :mod:`~engine.transcribe.grid`
cleans the note events up and places them on the grid. The job that continues a transcription is
:mod:`engine.pipelines.transcribed`."""
