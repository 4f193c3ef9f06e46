"""Soundfont discovery: explicit path, then $SEGUE_SOUNDFONT, then system fonts, then pretty_midi's TimGM6mb."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import BadInputError, EngineError
from engine.render.soundfont import (
    ENV_VAR,
    SystemSoundFont,
    bundled_soundfont_path,
    find_soundfont,
)

NO_SYSTEM: tuple[SystemSoundFont, ...] = ()


@pytest.fixture(scope="module")
def bundled() -> Path:
    path = bundled_soundfont_path()
    assert path is not None, "pretty_midi (with TimGM6mb.sf2) must be installed for the tests"
    return path


def copy_font(bundled: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundled, target)
    return target


def test_bundled_is_last_resort(bundled: Path) -> None:
    found = find_soundfont(environ={}, system=NO_SYSTEM)
    assert found.path == bundled
    assert found.name == "TimGM6mb"
    assert "GPL" in found.licence
    assert found.source == "pretty_midi"


def test_order(tmp_path: Path, bundled: Path) -> None:
    explicit = copy_font(bundled, tmp_path / "explicit.sf2")
    from_env = copy_font(bundled, tmp_path / "env.sf2")
    fluid = copy_font(bundled, tmp_path / "sf2" / "FluidR3_GM.sf2")
    muse = copy_font(bundled, tmp_path / "sf2" / "MuseScore_General-Lite.sf3")
    system = (
        SystemSoundFont(str(tmp_path / "sf2" / "FluidR3_GM.sf2"), "FluidR3 GM", "MIT", "fluid-soundfont-gm"),
        SystemSoundFont(
            str(tmp_path / "sf2" / "MuseScore_General*.sf[23]"), "MuseScore", "MIT", "musescore-general-soundfont-small"
        ),
    )
    env = {ENV_VAR: str(from_env)}
    assert find_soundfont(explicit, environ=env, system=system).path == explicit.resolve()
    assert find_soundfont(None, environ=env, system=system).source == ENV_VAR
    assert find_soundfont(None, environ=env, system=system).path == from_env.resolve()
    found = find_soundfont(None, environ={}, system=system)
    assert (found.path, found.source, found.licence) == (fluid, "fluid-soundfont-gm", "MIT")
    fluid.unlink()
    assert find_soundfont(None, environ={}, system=system).path == muse
    muse.unlink()
    assert find_soundfont(None, environ={}, system=system).path == bundled


def test_missing_explicit_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        find_soundfont(tmp_path / "nope.sf2", environ={})
    with pytest.raises(BadInputError, match=ENV_VAR):
        find_soundfont(environ={ENV_VAR: str(tmp_path / "nope.sf2")})
    not_sf = tmp_path / "notes.sf2"
    not_sf.write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    with pytest.raises(BadInputError, match="not a SoundFont"):
        find_soundfont(not_sf, environ={})
    with pytest.raises(BadInputError, match="not a file"):
        find_soundfont(tmp_path, environ={})


def test_env_var_is_used_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bundled: Path) -> None:
    font = copy_font(bundled, tmp_path / "mine.sf2")
    monkeypatch.setenv(ENV_VAR, str(font))
    assert find_soundfont().path == font.resolve()


def test_none_found_says_what_to_install() -> None:
    with pytest.raises(EngineError) as info:
        find_soundfont(environ={}, system=NO_SYSTEM, use_bundled=False)
    message = str(info.value)
    assert "apt install fluid-soundfont-gm" in message
    assert ENV_VAR in message
