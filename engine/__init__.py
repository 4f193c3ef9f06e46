"""Segue's neural engine: tokenizers, models, sampling, training and rendering.

Only :mod:`engine.api` is public to the layers above; it imports no torch.
"""
