"""`segue continue` starts without the modules only other commands use (bridge/cli.py imports the daemon lazily).

Checked in a fresh interpreter, by module name: no timing, nothing that depends on the machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_command_line_imports_neither_the_bridge_daemon_nor_audio_capture_until_a_command_needs_them() -> None:
    loaded = _modules_after("import bridge.cli")
    assert "bridge.cli" in loaded
    assert "bridge.daemon" not in loaded  # `segue bridge` and `segue capture` import it
    assert "bridge.link" not in loaded  # the daemon's DAW links
    assert "bridge.midiports" not in loaded  # MIDI clock input


def test_the_parser_still_offers_every_daw_adapter() -> None:
    from bridge.adapters import DAW_CHOICES
    from bridge.cli import HANDLERS
    from bridge.cli_args import build_parser

    parser = build_parser(HANDLERS)
    args = parser.parse_args(["bridge", "--daw", DAW_CHOICES[-1]])
    assert args.daw == DAW_CHOICES[-1]
