"""The docs' screenshots of the window at the sizes producers use, from job folders made with the real engine:

    python -m gui.screenshots docs/screenshots --continue-job JOBS/<continue job> --accompany-job JOBS/<accompany job>

writes ``window-1024x640.png`` and ``window-2560x1440.png`` (Continue) and ``continue-1440x900.png`` and
``accompany-1440x900.png`` (see docs/gui.md), each through ``segue gui --screenshot`` with ``--demo-job`` (offscreen,
the local engine in its own process, a temporary settings file). Look at each before committing it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gui.app import GuiOptions, run

SHOTS = (
    ("window-1024x640.png", (1024, 640), "continue"),
    ("continue-1440x900.png", (1440, 900), "continue"),
    ("accompany-1440x900.png", (1440, 900), "accompany"),
    ("window-2560x1440.png", (2560, 1440), "continue"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--continue-job", type=Path, required=True)
    parser.add_argument("--accompany-job", type=Path, required=True)
    args = parser.parse_args(argv)
    for name, size, mode in SHOTS:
        job = args.accompany_job if mode == "accompany" else args.continue_job
        options = GuiOptions(
            screenshot=args.out / name, demo_job=job, screenshot_size=size, screenshot_mode=mode, out_dir=job.parent
        )
        code = run(options)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
