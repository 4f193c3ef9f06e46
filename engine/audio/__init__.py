"""Audio engine: segue-concat (:mod:`engine.audio.concat`, the default: the region's own sound, recombined on its
grid), a residual-VQ codec (:mod:`engine.audio.codec`) and the prior over its codes (:mod:`engine.audio.prior`)
with their data and training, and MusicGen checkpoints (:mod:`engine.audio.musicgen`).

Import-light on purpose: importing ``engine.audio`` loads no torch; import the submodules you need.
"""
