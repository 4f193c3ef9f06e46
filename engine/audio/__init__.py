"""Audio engine: a residual-VQ codec (:mod:`engine.audio.codec`), its data and training, and the prior over codes.

Import-light on purpose: importing ``engine.audio`` loads no torch; import the submodules you need.
"""
