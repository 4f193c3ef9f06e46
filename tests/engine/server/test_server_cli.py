"""`segue serve` as a user starts it, and the layers: the bridge's command line and engine.api load neither torch
nor the server stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_rig import TOKEN, WAIT_S, free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("module", ["bridge.cli", "engine.api", "engine.remote", "engine.server"])
def test_light_modules_load_neither_torch_nor_the_server_stack(module: str) -> None:
    heavy = ("torch", "fastapi", "uvicorn", "starlette")
    code = f"import sys, {module}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_segue_serve_listens_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SEGUE_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "serve",
            "--port",
            str(port),
            "--devices",
            "cpu",
            "--data",
            str(tmp_path / "data"),
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_S
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "segue serve did not start"
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).json()["status"] == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        devices = httpx.get(f"{url}/v1/devices", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert devices == [{"name": "cpu", "busy": False, "job_id": None}]
        assert httpx.get(f"{url}/v1/devices").status_code == 401
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert f"segue serve: listening on http://127.0.0.1:{port} (token required; devices cpu;" in out
    assert "segue serve: stopped" in out
    assert (tmp_path / "data" / "jobs").is_dir()
