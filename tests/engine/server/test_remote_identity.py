"""The issue's "done when": a job run remotely gives exactly the files a local run gives for the same seed.

`segue continue` with the shipped model (2 bars, 2 variants), once with the local engine and once with
`--engine URL --token T` against a real uvicorn serving the local engine: the same files, byte for byte (MIDI and
WAV without the provenance stamped into them afterwards; the WAV samples are compared as well, so a failure says
which), and the same manifest apart from ids, times and the engine's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from server_rig import TOKEN, RunningServer, thread_server

from bridge.cli import main as segue
from engine.provenance.report import inspect_file
from engine.provenance.stamp import strip_provenance
from engine.server.workers import local_engine_factory

ROOT = Path(__file__).resolve().parents[3]
REGION = ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid"
ARGS = [str(REGION), "--bars", "2", "--variants", "2", "--seed", "7", "--json"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server, and one torch thread for both engines: on a busy 2-core machine two threads cost 25x
    (1.8 s against 51 s for this job); both runs use the same setting, so the numbers are the same."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGUE_THREADS", "1")
        with thread_server(tmp_path_factory.mktemp("data"), local_engine_factory, devices=("cpu",)) as running:
            yield running
    torch.set_num_threads(threads)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[Path, dict[str, object]]:
    code = segue(["continue", *ARGS, *args])
    out = capsys.readouterr().out
    assert code == 0, out
    manifest: dict[str, object] = json.loads(out)
    out_dir = Path(args[args.index("--out") + 1])
    return out_dir / str(manifest["id"]), manifest


def files(job_dir: Path) -> dict[str, Path]:
    return {str(p.relative_to(job_dir)): p for p in sorted(job_dir.rglob("*")) if p.is_file() and p.name != "job.json"}


def test_a_remote_run_gives_exactly_the_files_of_a_local_run(
    tmp_path: Path, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    local_dir, local = run(capsys, "--out", str(tmp_path / "local"))
    remote_dir, remote = run(capsys, "--out", str(tmp_path / "remote"), "--engine", server.url, "--token", TOKEN)
    assert local["engine"] == "local (cpu)" and remote["engine"] == f"remote ({server.url})"

    local_files, remote_files = files(local_dir), files(remote_dir)
    assert sorted(remote_files) == sorted(local_files)
    assert {"v01/continuation.mid", "v01/continuation.wav", "v01/full.mid", "v02/full.wav"} <= set(local_files)
    for rel, path in local_files.items():
        if rel.endswith(".wav"):
            here, there = sf.read(path, always_2d=True), sf.read(remote_files[rel], always_2d=True)
            assert here[1] == there[1], rel
            np.testing.assert_array_equal(here[0], there[0], err_msg=rel)
        # byte for byte as the engine wrote them; the provenance stamped afterwards names each side's job
        assert strip_provenance(path.read_bytes()) == strip_provenance(remote_files[rel].read_bytes()), rel
        here_record, there_record = inspect_file(path).record, inspect_file(remote_files[rel]).record
        assert here_record is not None and there_record is not None, rel
        assert (here_record.model, here_record.seed, here_record.region_sha256) == (
            there_record.model, there_record.seed, there_record.region_sha256)  # fmt: skip
        assert here_record.engine == "local" and there_record.engine.startswith("remote 127.0.0.1:"), rel

    for key in ("status", "mode", "kind", "model", "params", "place_at", "variants", "file_sources"):
        assert remote[key] == local[key], key
    region_local, region_remote = dict(local["region"]), dict(remote["region"])  # type: ignore[call-overload]
    region_local.pop("sources"), region_remote.pop("sources")  # the same file, hashed on this side in both runs
    assert region_remote == region_local
    assert remote["region"]["sources"] == local["region"]["sources"]  # type: ignore[index]
