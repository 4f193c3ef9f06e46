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


def test_segue_continue_parses_its_command_line_without_the_bridges_osc_adapters_or_capture() -> None:
    statement = (
        "from bridge.cli import HANDLERS\nfrom bridge.cli_args import build_parser\n"
        "argv = ['continue', 'examples/regions/pop_100bpm_4-4.mid', '--bars', '2', '--seed', '7']\n"
        "build_parser(HANDLERS, argv).parse_args(argv)"
    )
    loaded = _modules_after(statement)
    for module in ("bridge.osc", "bridge.adapters", "bridge.service", "bridge.capture.options", "pythonosc"):
        assert module not in loaded, module


def test_the_parser_made_for_one_command_line_parses_it_as_the_whole_parser_does() -> None:
    from bridge.cli import HANDLERS
    from bridge.cli_args import build_parser

    for argv in (
        ["-v", "continue", "a.mid", "--bars", "4", "--variants", "2", "--out", "jobs"],
        ["bridge", "--daw", "reaper", "--osc-port", "0", "--place", "none"],
        ["capture", "--midi-clock-in", "clock", "--wait", "3"],
        ["jobs", "--json"],
    ):
        assert build_parser(HANDLERS, argv).parse_args(argv) == build_parser(HANDLERS).parse_args(argv), argv
    full_help = build_parser(HANDLERS).format_help()
    assert build_parser(HANDLERS, ["continue"]).format_help() == full_help  # every command still listed
    assert build_parser(HANDLERS, ["--help"]).format_help() == full_help
