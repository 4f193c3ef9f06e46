"""Symbolic (MIDI) engine in MuseNet's lineage: REMI tokens, a GPT with a KV cache, constrained sampling."""
