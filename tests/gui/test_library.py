"""Keep and throw away: variants and jobs deleted to a trash they come back from (never a silent delete), and
variants named and annotated, kept beside the jobs across a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from engine.errors import BadInputError
from gui.core import library
from gui.core.settings import load_settings
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _ready(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path) -> tuple[Rig, QtMainWindow]:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=3)
    return rig, window


def test_a_deleted_variant_goes_to_the_trash_and_comes_back(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None
    actions = {a.text(): a for a in window.variants.row_menu("v02").actions()}
    actions["Delete (to the trash)"].trigger()
    state = rig.models.variants.value
    assert [i.variant_id for i in state.items] == ["v01", "v03"] and state.item("v03").number == 3  # type: ignore[union-attr]
    assert not (job_dir / "v02").exists()
    (entry,) = library.trash_entries(rig.out_dir)
    assert Path(entry.trashed).is_dir() and (Path(entry.trashed) / "continuation.wav").is_file()  # nothing lost
    assert "moved to the trash" in rig.models.message.value.text  # type: ignore[union-attr]
    window.edit_menu.actions()[0].trigger()  # Edit > Restore the last deleted (Ctrl+Z)
    assert [i.variant_id for i in rig.models.variants.value.items] == ["v01", "v02", "v03"]
    assert (job_dir / "v02" / "continuation.wav").is_file() and library.trash_entries(rig.out_dir) == []
    rig.session.restore_last()
    assert rig.models.message.value.text == "The trash is empty."  # type: ignore[union-attr]


def test_restoring_never_overwrites_what_stands_there_now(tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    folder = out / "job-1" / "v01"
    folder.mkdir(parents=True)
    (folder / "a.wav").write_bytes(b"first")
    entry = library.move_to_trash(out, folder, "job-1/v01")
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"new")
    with pytest.raises(BadInputError, match="exists again"):
        library.restore(out, entry)
    assert (folder / "a.wav").read_bytes() == b"new" and (Path(entry.trashed) / "a.wav").read_bytes() == b"first"


def test_a_deleted_job_leaves_the_history_and_comes_back(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None and len(rig.models.history.value.rows) == 1
    item = window.history.tree.topLevelItem(0)
    assert item is not None
    menu = {a.text(): a for a in window.history.job_menu(item).actions()}
    menu["Delete job (to the trash)"].trigger()
    assert rig.models.history.value.rows == () and not job_dir.exists()
    assert rig.models.variants.value.items == ()
    rig.session.restore_last()
    assert [r.job_dir for r in rig.models.history.value.rows] == [job_dir]
    assert len(rig.models.variants.value.items) == 3


def test_variants_are_named_and_annotated_and_keep_it_across_a_restart(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    rig.session.annotate("v02", name="hook idea", notes="try it under the chorus")
    item = rig.models.variants.value.item("v02")
    assert item is not None and (item.name, item.notes) == ("hook idea", "try it under the chorus")
    tip = window.variants.list_model.data(window.variants.list_model.index(1), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("hook idea\n") and tip.endswith("try it under the chorus")
    rig.session.close()
    again = make_rig()  # a restart opens the latest job
    qtbot.waitUntil(lambda: again.models.variants.value.item("v02") is not None, timeout=3000)
    kept = again.models.variants.value.item("v02")
    assert kept is not None and kept.name == "hook idea" and kept.notes == "try it under the chorus"
    again.session.annotate("v02", name="")
    assert again.models.variants.value.item("v02").name == ""  # type: ignore[union-attr]
    assert library.load_annotations(again.out_dir) == {kept.key: {"notes": "try it under the chorus"}}


def test_the_jobs_folder_can_be_changed_from_the_window(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, tmp_path: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    assert window.history.folder_button.text() == "Folder…"  # opens a folder dialog, then does what follows
    elsewhere = tmp_path / "elsewhere" / "jobs"
    rig.session.set_jobs_dir(elsewhere)
    assert rig.models.history.value.rows == () and rig.models.history.value.out_dir == elsewhere.resolve()
    assert rig.models.variants.value.items == ()
    generate_and_wait(qtbot, rig, variants=1)
    assert [r.job_dir.parent for r in rig.models.history.value.rows] == [elsewhere.resolve()]
    rig.session.close()
    assert load_settings(rig.settings_path).settings.out_dir == str(elsewhere.resolve())  # kept for the next start
