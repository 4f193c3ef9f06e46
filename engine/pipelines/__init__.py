"""The job pipelines of the local engine: one module per kind of job, each with the same entry point.

``run(request, job_dir, context) -> GenerationResult`` writes every variant's files under ``job_dir`` and
returns what it wrote; ``context`` (:class:`engine.pipelines.context.JobContext`) carries the loaded models, the
job lock, the soundfont, the progress callback, the cancel token, the transcriber's threads and the notes the
dispatcher already has.

- :mod:`engine.pipelines.midi`: a MIDI region continued by the MIDI engine (MIDI, rendered mix and stems);
- :mod:`engine.pipelines.accompany`: new parts under a region's own bars (the accompany model);
- :mod:`engine.pipelines.audio`: an audio region continued by the audio engine (and its MIDI file, if given, by
  the MIDI engine into the same variant folders);
- :mod:`engine.pipelines.transcribed`: an audio-only region transcribed to MIDI, then the MIDI pipeline (or both).

:class:`engine.local.LocalEngine` picks the pipeline; :mod:`engine.pipelines.files` is the one writer of a
variant's folder (never over an existing file) and the one render helper (the audio is what the MIDI file says).
"""
