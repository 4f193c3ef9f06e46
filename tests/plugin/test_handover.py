"""Segue Link's variant hand-over from its worker thread to its audio thread (plugin/link_audio.hpp), driven block by
block by tests/plugin/handover_test.cpp, which includes the plugin's headers: the cases a host reaches only by chance
(the queue of buffers the audio thread lets go of is full when a new variant or a stop arrives) come every time.
Before the fix the audio thread wrote a variant it could not take yet back into ``pending``, where the worker may
just have put a newer one (that one was then lost, and leaked), and a stop that came while the queue was full was
forgotten (the variant went on playing)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from link_rig import build_unit

SOURCE = Path(__file__).resolve().parent / "handover_test.cpp"


def test_a_variant_or_a_stop_that_comes_while_the_retired_queue_is_full_is_kept_and_nothing_leaks() -> None:
    program = build_unit(SOURCE)
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=60, check=False)
    print(run.stdout)
    lines = run.stdout.splitlines()
    assert run.returncode == 0 and lines[-1] == "PASSED", run.stdout + run.stderr
    assert len([line for line in lines if line.startswith("ok ")]) == 10
