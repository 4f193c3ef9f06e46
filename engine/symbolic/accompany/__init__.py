"""Accompaniment: new parts under a region's own bars, by a MIDI model fine-tuned for track infilling.

- :mod:`~engine.symbolic.accompany.layout`: the token layout, the roles, saving and loading the model;
- :mod:`~engine.symbolic.accompany.generate`: writing the asked parts under a region (key and harmony rules);
- :mod:`~engine.symbolic.accompany.data`: the multi-part training pieces from the music21 corpus;
- :mod:`~engine.symbolic.accompany.train`: fine-tuning (``segue train accompany``);
- :mod:`~engine.symbolic.accompany.evaluate`: the held-out figures of the model card.

The job that runs it is :mod:`engine.pipelines.accompany`.
"""
