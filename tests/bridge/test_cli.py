from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, write_midi_region, write_wav

import engine.entrypoints
from bridge import cli
from bridge.jobs import load_job
from engine.api import Engine
from engine.errors import EngineError


class Run:
    """``segue`` invoked in-process with a fake engine."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.engine = FakeEngine()
        self.opened: list[tuple[str, dict[str, Any]]] = []
        self.out = tmp_path / "out"
        self.region = write_midi_region(tmp_path / "region.mid")

    def factory(self, spec: str, **options: Any) -> Engine:
        self.opened.append((spec, options))
        return self.engine

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv), engine_factory=self.factory)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def cont(self, *extra: str) -> tuple[int, str, str]:
        return self("continue", str(self.region), "--out", str(self.out), *extra)

    def job_dirs(self) -> list[Path]:
        return sorted(self.out.iterdir()) if self.out.exists() else []


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path, capsys)


def test_continue_done(run: Run) -> None:
    code, out, err = run.cont("--bars", "2", "--variants", "2", "--seed", "5", "--temperature", "0.8")
    assert code == 0, err
    (job_dir,) = run.job_dirs()
    assert f"job folder: {job_dir}" in out
    assert str(job_dir / "v01" / "continuation.wav") in out and str(job_dir / "v02" / "continuation.mid") in out
    assert "100.0%" in err  # plain progress lines: stderr is not a terminal here
    request = run.engine.requests[0]
    assert request.prompt.midi_path == run.region.resolve()
    assert (request.params.bars, request.params.variants, request.params.seed) == (2, 2, 5)
    assert request.params.temperature == 0.8 and request.model == "default"
    assert run.opened == [("local", {})]
    assert load_job(job_dir).status == "done"


def test_json_prints_the_manifest(run: Run) -> None:
    code, out, _ = run.cont("--json", "--variants", "1", "--tempo", "96", "--meter", "6/8")
    assert code == 0
    (job_dir,) = run.job_dirs()
    assert out == (job_dir / "job.json").read_text()
    data = json.loads(out)
    assert data["status"] == "done" and data["id"] == job_dir.name
    assert run.engine.requests[0].prompt.tempo_bpm == 96.0
    assert str(run.engine.requests[0].prompt.meter) == "6/8"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--meter", "4-4"], "meter must look like 4/4"),
        (["--meter", "7/9"], "denominator must be one of"),
        (["--bars", "0"], "bars must be a whole number in 1..64"),
        (["--bars", "100000"], "bars must be a whole number in 1..64"),
        (["--variants", "0"], "variants must be a whole number"),
        (["--temperature", "0"], "temperature must be in"),
        (["--temperature", "-1"], "temperature must be in"),
        (["--top-p", "1.5"], "top-p must be in"),
        (["--seed", "-3"], "seed must be"),
        (["--tempo", "0"], "tempo must be between"),
        (["--mode", "remix"], "invalid choice"),
        (["--bars", "four"], "invalid int value"),
        (["--temperature", "hot"], "invalid float value"),
    ],
)
def test_bad_arguments_exit_2_without_a_job(run: Run, args: list[str], message: str) -> None:
    code, out, err = run.cont(*args)
    assert code == 2
    assert message in err and out == ""
    assert run.job_dirs() == [] and run.opened == []  # checked before the engine is opened


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.mid", None, "no such file"),
        ("empty.mid", b"", "is empty"),
        ("lyrics.txt", b"la la la", "not a format Segue reads"),
    ],
)
def test_unusable_input_files_exit_2(run: Run, name: str, content: bytes | None, message: str) -> None:
    path = run.tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, _, err = run("continue", str(path), "--out", str(run.out))
    assert code == 2
    assert str(path) in err and message in err and "WAV, FLAC or AIFF" in err
    assert run.job_dirs() == []


def test_audio_only_needs_a_tempo(run: Run) -> None:
    wav = write_wav(run.tmp_path / "take.wav", 1.0)
    code, _, err = run("continue", str(wav), "--out", str(run.out))
    assert code == 2 and "--tempo" in err and str(wav) in err
    code, _, err = run("continue", str(wav), str(run.region), "--out", str(run.out))
    assert code == 0, err
    prompt = run.engine.requests[0].prompt
    assert prompt.audio_path == wav.resolve() and prompt.midi_path == run.region.resolve()
    code, _, _ = run("continue", str(wav), "--tempo", "100", "--out", str(run.out))
    assert code == 0
    assert load_job(run.job_dirs()[-1]).region.sources[0].role == "audio"


def test_bad_input_from_the_engine_exits_2_and_marks_the_job(run: Run) -> None:
    from engine.errors import ModelNotFoundError

    run.engine.fail = ModelNotFoundError("no model named 'nope'; installed models: fake-midi")
    code, out, err = run.cont("--model", "nope", "--json")
    assert code == 2 and "no model named 'nope'" in err
    (job_dir,) = run.job_dirs()
    assert json.loads(out)["status"] == "failed" == load_job(job_dir).status


def test_engine_failure_exits_1_with_a_hint(run: Run) -> None:
    run.engine.fail = EngineError("the sampler produced no notes")
    code, _, err = run.cont()
    assert code == 1
    assert "the sampler produced no notes" in err and "--verbose" in err and "SEGUE_DEBUG=1" in err
    (job_dir,) = run.job_dirs()
    record = load_job(job_dir)
    assert record.status == "failed" and record.error is not None
    assert record.error.message == "the sampler produced no notes"


def test_unexpected_error_opening_the_engine_exits_1(run: Run) -> None:
    def factory(spec: str, **options: Any) -> Engine:
        raise ImportError("No module named 'torch'")

    code = cli.main(["continue", str(run.region), "--out", str(run.out)], engine_factory=factory)
    err = run.capsys.readouterr().err
    assert code == 1 and "ImportError: No module named 'torch'" in err and "--verbose" in err
    code = cli.main(["-v", "continue", str(run.region), "--out", str(run.out)], engine_factory=factory)
    err = run.capsys.readouterr().err
    assert code == 1 and "--verbose (or" not in err


def test_ctrl_c_cancels_the_job_cleanly(run: Run) -> None:
    run.engine.interrupt_at = 2
    code, _, err = run.cont("--variants", "3")
    assert code == 130 and "cancelling" in err and "cancelled" in err, err
    (job_dir,) = run.job_dirs()
    record = load_job(job_dir)
    assert record.status == "cancelled" and record.error is not None
    assert record.error.partial_variants == ("v01",)


def test_second_ctrl_c_stops_at_once(run: Run) -> None:
    run.engine.interrupt_at = 2
    run.engine.interrupt_twice = True
    code, _, err = run.cont("--variants", "3")
    assert code == 130 and "cancelled" in err
    (job_dir,) = run.job_dirs()
    record = load_job(job_dir)
    assert record.status == "cancelled" and record.error is not None
    assert "stopped by the user" in record.error.message and record.error.partial_variants == ("v01",)


def test_real_open_engine_rejects_unknown_engines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = write_midi_region(tmp_path / "r.mid")
    code = cli.main(["continue", str(region), "--engine", "warp-drive", "--out", str(tmp_path / "out")])
    assert code == 2 and "unknown engine 'warp-drive'" in capsys.readouterr().err


def test_token_goes_to_remote_engines_only(run: Run) -> None:
    run.cont("--token", "secret")
    run.cont("--engine", "https://gpu.example:8750", "--token", "secret")
    assert run.opened == [("local", {}), ("https://gpu.example:8750", {"token": "secret"})]


def test_jobs_lists_every_job(run: Run) -> None:
    run.cont()
    run.engine.fail = EngineError("out of memory")
    run.cont()
    code, out, _ = run("jobs", "--out", str(run.out))
    assert code == 0
    first, second = run.job_dirs()
    assert first.name in out and second.name in out and "done" in out and "out of memory" in out
    code, out, _ = run("jobs", "--out", str(run.out), "--json")
    assert [j["status"] for j in json.loads(out)] == ["done", "failed"]
    code, out, _ = run("jobs", "--out", str(run.tmp_path / "empty"))
    assert code == 0 and "no jobs" in out


def test_accompany_with_parts_and_audio_output(run: Run) -> None:
    code, out, err = run.cont("--mode", "accompany", "--parts", "bass, Piano", "--variants", "2", "--seed", "3")
    assert code == 0, err
    params = run.engine.requests[0].params
    assert params.mode == "accompany" and params.parts == ("bass", "piano") and params.output == "auto"
    (job_dir,) = run.job_dirs()
    record = load_job(job_dir)
    assert record.mode == "accompany" and record.params.parts == ("bass", "piano")
    assert record.place_at is not None and record.place_at.beats == 0.0
    assert "accompaniment(s) (bass, piano) over 2 bar(s)" in out and "place at: the region start" in out
    assert "stems: 2 in" in out
    wav = write_wav(run.tmp_path / "vocal.wav", 1.0)
    code, _, err = run("continue", str(wav), "--tempo", "92", "--as", "midi", "--out", str(run.out))
    assert code == 0, err
    assert run.engine.requests[1].params.output == "midi" and run.engine.requests[1].params.parts == ()
    assert load_job(run.job_dirs()[-1]).params.output == "midi"
    code, out, _ = run("jobs", "--out", str(run.out))
    assert " accompany " in out and " continue " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--parts", "bass"], "--parts is only for --mode accompany"),
        (["--mode", "accompany", "--parts", "bass,,piano"], "part names separated by commas"),
        (["--mode", "accompany", "--parts", " "], "part names separated by commas"),
        (["--mode", "accompany", "--parts", "bass,bass"], "a part is named twice"),
        (["--mode", "accompany", "--parts", "double bass"], "a part name is lowercase letters"),
        (["--mode", "accompany", "--parts", ",".join(f"p{i}" for i in range(9))], "at most 8 parts"),
        (["--as", "video"], "invalid choice"),
    ],
)
def test_bad_parts_and_output_exit_2(run: Run, args: list[str], message: str) -> None:
    code, out, err = run.cont(*args)
    assert code == 2 and message in err and out == "", err
    assert run.job_dirs() == [] and run.opened == []


def test_help_names_parts_and_as(run: Run) -> None:
    code, out, _ = run("continue", "--help")
    assert code == 0
    assert "--parts P1,P2" in out and "--as {auto,audio,midi,both}" in out


def test_models(run: Run) -> None:
    code, out, _ = run("models")
    assert code == 0 and "fake-midi" in out and "1.2M params" in out
    assert "continue,accompany" in out and "accompany parts: bass, piano, strings, drums" in out
    code, out, _ = run("models", "--json")
    assert json.loads(out)[0]["name"] == "fake-midi"


def test_doctor(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.entrypoints, "doctor", lambda: {"torch": {"ok": True, "detail": "2.13.0, device cpu"}})
    code, out, _ = run("doctor")
    assert code == 0 and "2.13.0, device cpu" in out
    assert "audio devices: " in out and "MIDI ports: " in out
    monkeypatch.setattr(engine.entrypoints, "doctor", lambda: {"models": {"ok": False, "detail": "none installed"}})
    code, out, _ = run("doctor", "--json")
    assert code == 1 and json.loads(out)["models"]["detail"] == "none installed"


def test_train_forwards_its_arguments(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(engine.entrypoints, "run_training", lambda kind, argv: calls.append((kind, argv)) or 3)
    code, _, _ = run("train", "symbolic", "--data", "d", "--out", "o", "--steps", "5", "-v")
    assert code == 3
    assert calls == [("symbolic", ["--data", "d", "--out", "o", "--steps", "5", "-v"])]


def test_train_audio_checks_its_data_folder(run: Run) -> None:
    code, _, err = run("train", "audio", "--data", str(run.tmp_path / "d"), "--out", str(run.tmp_path / "o"))
    assert code == 2 and "is not a folder; give a folder of audio files" in err


def test_serve_refuses_other_addresses_without_a_token(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGUE_TOKEN", raising=False)
    code, _, err = run("serve", "--host", "0.0.0.0", "--port", "1", "--data", str(run.tmp_path / "srv"))
    assert code == 2 and "refusing to listen on 0.0.0.0 without a token" in err and "--token" in err


def test_version_help_and_usage_errors(run: Run) -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("segue ")
    assert run("--help")[0] == 0
    assert run()[0] == 2
    assert run("remix")[0] == 2


def test_the_command_line_does_not_import_torch() -> None:
    code = "import sys, bridge.cli; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_bridge_serves_osc_until_sigint(run: Run) -> None:
    """`segue bridge --osc-port 0` listens, answers a ping, and stops cleanly on SIGINT (as Ctrl-C does)."""
    import os
    import signal
    import threading

    from osc_helpers import DawSocket

    answers: list[object] = []

    def ready(running: cli.BridgeRunning) -> None:
        def play_the_daw() -> None:
            daw = DawSocket(running.osc_address)
            try:
                daw.send("/segue/ping")
                answers.append(daw.expect("/segue/pong", timeout=5))
            finally:
                daw.close()
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=play_the_daw, daemon=True).start()

    argv = ["bridge", "--osc-port", "0", "--out", str(run.out)]
    code = cli.main(argv, engine_factory=run.factory, bridge_ready=ready)
    err = run.capsys.readouterr().err
    assert code == 0, err
    assert answers and "listening for OSC on 127.0.0.1:" in err and "stopping" in err
    assert run.opened == [("local", {})]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_bridge_stop_hook_and_bad_options(run: Run) -> None:
    code = cli.main(
        ["bridge", "--osc-port", "0", "--out", str(run.out), "--place", "all"],
        engine_factory=run.factory,
        bridge_ready=lambda running: running.stop(),
    )
    assert code == 0
    code, _, err = run("bridge", "--daw", "live", "--daw-port", "70000", "--osc-port", "0")
    assert code == 2 and "--daw-port must be in 0..65535" in err
    code, _, err = run("bridge", "--daw-host", "127.0.0.1", "--osc-port", "0")
    assert code == 2 and "--daw-host needs --daw-port" in err
    code, _, err = run("bridge", "--osc-port", "70000")
    assert code == 2 and "--osc-port must be in 0..65535" in err
    code, _, err = run("bridge", "--daw", "link", "--daw-port", "3819", "--osc-port", "0")
    assert code == 2 and "--daw link talks to the Segue Link plugins" in err
