"""Copy the shared Lua into the Ardour scripts (Ardour runs each script from one file, without require/dofile).

Run after editing reaper/segue_core.lua or ardour/segue_ardour.lua: ``python3 daw_templates/embed_core.py``.
tests/daw_templates/test_lua_core.py fails when a script's copy differs. Standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCKS = {  # marker name -> (source file, how the script binds it)
    "segue_core.lua": (HERE / "reaper" / "segue_core.lua", "local core = (function()\n{body}\nend)()"),
    "segue_ardour.lua": (HERE / "ardour" / "segue_ardour.lua", "local segue = (function(core)\n{body}\nend)(core)"),
}
SCRIPTS = ("segue_send.lua", "segue_accompany.lua", "segue_place.lua", "segue_autoplace.lua")


def embedded(text: str) -> str:
    """``text`` with every ``-- >>> NAME`` ... ``-- <<< NAME`` block filled from its source."""
    for name, (source, wrapper) in BLOCKS.items():
        body = wrapper.format(body=source.read_text(encoding="utf-8").rstrip("\n"))
        pattern = re.compile(rf"(-- >>> {re.escape(name)}\n).*?(-- <<< {re.escape(name)}\n)", re.S)
        text, count = pattern.subn(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
        if count != 1:
            raise SystemExit(f"expected one '-- >>> {name}' block, found {count}")
    return text


def main() -> int:
    for script in SCRIPTS:
        path = HERE / "ardour" / script
        text = path.read_text(encoding="utf-8")
        new = embedded(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(HERE.parent)}")  # noqa: T201 - a command-line tool
    return 0


if __name__ == "__main__":
    sys.exit(main())
