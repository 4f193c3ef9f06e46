"""The fake engine of tests/bridge, placing its variants on the bar line after the region as the real engine does
(the plain fake always says 8 beats). Not a test module."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from fake_engine import FakeEngine

from engine.api import GenerationRequest, GenerationResult


class RegionEngine(FakeEngine):
    def generate(self, request: GenerationRequest, job_dir: Path, *args: Any, **kwargs: Any) -> GenerationResult:
        result = super().generate(request, job_dir, *args, **kwargs)
        prompt = request.prompt
        bar = prompt.meter.numerator * 4 / prompt.meter.denominator
        place_at = math.ceil(prompt.length_beats / bar - 1e-9) * bar
        return dataclasses.replace(result, place_at_beats=place_at, place_at_seconds=place_at * 60 / prompt.tempo_bpm)
