"""The neural network the MIDI and the audio engines share: the GPT (:mod:`engine.nn.model`), its key/value cache
(:mod:`engine.nn.kv_cache`) and its fast decode step (:mod:`engine.nn.model_fast`)."""
