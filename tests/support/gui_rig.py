"""Fakes and helpers for the GUI tests (imported by conftest.py and the tests): ``from gui_rig import ...``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fake_engine import REGION_BARS, FakeEngine, write_midi, write_wav
from pytestqt.qtbot import QtBot

from engine.api import CancelToken, GenerationRequest, GenerationResult, ProgressCallback
from gui.adapters import QtEventPump
from gui.core.audition import FakeOutput
from gui.core.session import Session


class StemEngine(FakeEngine):
    """The bridge tests' fake engine, plus what the real MIDI engine also writes: two stems per variant and
    ``full.mid`` / ``full.wav`` (the region, then the variant; for accompany the region and the parts at once); the
    job's region has the tempo and meter the app sent."""

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        result = super().generate(request, job_dir, progress, cancel)
        prompt = request.prompt  # the region as the app sent it (the bridge's fake says 120 BPM 4/4 whatever it got)
        meter = prompt.meter or result.region.meter
        region = dataclasses.replace(result.region, tempo_bpm=prompt.tempo_bpm or result.region.tempo_bpm, meter=meter)
        result = dataclasses.replace(result, region=region)
        if request.params.mode == "accompany":  # the fake already wrote its stems; full.* = region + parts, at once
            variants = []
            for variant in result.variants:
                write_midi(job_dir / variant.id / "full.mid", REGION_BARS)
                files = {**variant.files, "full_midi": f"{variant.id}/full.mid"}
                variants.append(dataclasses.replace(variant, files=files))
            return dataclasses.replace(result, variants=tuple(variants))
        bars = request.params.bars
        variants = []
        for variant in result.variants:
            folder = job_dir / variant.id
            files = dict(variant.files)
            for part in ("piano", "bass"):
                write_wav(folder / "stems" / f"{part}.wav", variant.duration_seconds)
                files[f"stem:{part}"] = f"{variant.id}/stems/{part}.wav"
            write_midi(folder / "full.mid", bars + 2)
            write_wav(folder / "full.wav", variant.duration_seconds * 2)
            files["full_midi"] = f"{variant.id}/full.mid"
            files["full_audio"] = f"{variant.id}/full.wav"
            variants.append(dataclasses.replace(variant, files=files, parts=("piano", "bass")))
        return dataclasses.replace(result, variants=tuple(variants))


class FakeClock:
    """Stands in for :class:`bridge.daemon.MidiClockIn`."""

    def __init__(self, port: str) -> None:
        self.port = port
        self.started = self.closed = False
        self.connected = True
        self.state: Any = None

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True

    def transport(self) -> Any:
        from bridge.events import TransportState

        return self.state or TransportState(120.0, True, 9.0, f"midi-clock:{self.port}")


@dataclasses.dataclass
class Rig:
    """What a test drives: the session, its fakes, the folders."""

    session: Session
    engine: FakeEngine
    outputs: list[FakeOutput]
    clocks: list[FakeClock]
    engine_specs: list[tuple[str, dict[str, Any]]]
    out_dir: Path
    settings_path: Path
    pump: QtEventPump

    @property
    def models(self) -> Any:
        return self.session.models


def wait_engine(qtbot: QtBot, rig: Rig) -> None:
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=5000)


def generate_and_wait(qtbot: QtBot, rig: Rig, **overrides: Any) -> None:
    """Generate on the current region and wait for the variants."""
    before = rig.models.variants.value.job
    assert rig.session.generate(**overrides)
    qtbot.waitUntil(
        lambda: rig.models.variants.value.job is not before and rig.models.variants.value.job is not None,
        timeout=5000,
    )
