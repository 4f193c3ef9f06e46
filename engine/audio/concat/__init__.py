"""segue-concat: audio continuation made of the region's own sound (units, codes, prior, decoder, job).

See docs/audio-engine.md ("segue-concat") and :mod:`engine.audio.concat.job`.
"""
