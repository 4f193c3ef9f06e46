"""How long stamping a job's files with provenance takes (engine/provenance/stamp.py), and what it adds.

A synthetic job: ``--variants`` variants, each a mix, ``--stems`` stems and a full mix (48 kHz stereo 24-bit WAV,
``--seconds`` long) plus continuation.mid (examples/regions/pop_100bpm_4-4.mid). Stamped once with a C2PA
signature (Segue's local key, made in a temporary config folder) and once without.

    .venv/bin/python bench/bench_provenance.py [--variants 4] [--stems 4] [--seconds 19.2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.provenance.record import ProvenanceSettings
from engine.provenance.report import inspect_file
from engine.provenance.stamp import stamp_job
from engine.render.wavfile import write_wav

ROOT = Path(__file__).resolve().parents[1]
RATE = 48_000


def make_job(folder: Path, variants: int, stems: int, seconds: float) -> dict[str, object]:
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.3, 0.3, size=(2, int(seconds * RATE))).astype(np.float32)
    records = []
    for v in range(1, variants + 1):
        vid = f"v{v:02d}"
        files = {"midi": f"{vid}/continuation.mid", "audio": f"{vid}/continuation.wav", "full_audio": f"{vid}/full.wav"}
        files.update({f"stem:part{s}": f"{vid}/stems/part{s}.wav" for s in range(stems)})
        for rel in files.values():
            if rel.endswith(".wav"):
                write_wav(folder / rel, audio, RATE)
            else:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid", folder / rel)
        records.append({"id": vid, "seed": 7 + v, "files": files, "parts": [f"part{s}" for s in range(stems)]})
    return {
        "id": "20261207-120000-bench-continue-abcd", "mode": "continue", "kind": "midi",
        "model": "segue-midi-small", "engine": "local (cpu)", "params": {"bars": 8, "temperature": 1.0},
        "region": {"sources": [{"path": "/music/region.mid", "sha256": "ab" * 32}]}, "variants": records,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--stems", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=19.2)  # 8 bars at 100 BPM
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SEGUE_CONFIG_DIR"] = str(Path(tmp) / "config")
        rows = []
        for sign in (True, False):
            folder = Path(tmp) / f"job-{sign}"
            job = make_job(folder, args.variants, args.stems, args.seconds)
            wavs = sorted(folder.rglob("*.wav"))
            before = sum(p.stat().st_size for p in wavs)
            started = time.perf_counter()
            report = stamp_job(folder, job, ProvenanceSettings(sign=sign))
            elapsed = time.perf_counter() - started
            added = (sum(p.stat().st_size for p in wavs) - before) / len(wavs)
            sizes = inspect_file(wavs[0]).chunk_sizes
            rows.append((sign, len(report.stamped), len(wavs), elapsed, added, sizes))
        print(f"{'C2PA':>5} {'files':>5} {'wavs':>4} {'total s':>8} {'ms/file':>8} {'bytes/wav':>9}  chunks of one WAV")
        for sign, files, wavs, elapsed, added, sizes in rows:
            chunks = ", ".join(f"{k.strip()} {v}" for k, v in sizes.items() if k != "data")
            print(f"{'yes' if sign else 'no':>5} {files:>5} {wavs:>4} {elapsed:>8.2f} {1000 * elapsed / files:>8.1f} "
                  f"{added:>9.0f}  {chunks}")  # fmt: skip


if __name__ == "__main__":
    main()
