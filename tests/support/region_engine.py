"""The fake engine of tests/bridge, placing its variants on the bar line after the region as the real engine does
(the plain fake always says 8 beats). With ``click_rate``, each variant's mix is rewritten as a click track at that
rate (a click 200 samples in, after a DAW's default fade-in, and one on every further beat), so a render shows
where it landed. Not a test module."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from fake_engine import FakeEngine

from engine.api import GenerationRequest, GenerationResult

CLICK_AT = 200  # samples into the mix: past Ardour's 64-sample default fade-in


@dataclasses.dataclass
class RegionEngine(FakeEngine):
    click_rate: int | None = None

    def generate(self, request: GenerationRequest, job_dir: Path, *args: Any, **kwargs: Any) -> GenerationResult:
        result = super().generate(request, job_dir, *args, **kwargs)
        prompt = request.prompt
        bar = prompt.meter.numerator * 4 / prompt.meter.denominator
        place_at = math.ceil(prompt.length_beats / bar - 1e-9) * bar
        if self.click_rate is not None:
            beat = self.click_rate * 60.0 / prompt.tempo_bpm
            beats = int(request.params.bars * bar)
            for variant in result.variants:
                audio = np.zeros(round(beats * beat), dtype=np.float32)
                audio[[CLICK_AT + round(k * beat) for k in range(beats)]] = 0.5
                soundfile.write(job_dir / variant.files["audio"], audio, self.click_rate, subtype="FLOAT")
        return dataclasses.replace(result, place_at_beats=place_at, place_at_seconds=place_at * 60 / prompt.tempo_bpm)
