"""The SEGUE_* variables, read once into one frozen value (engine/environment.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.environment import Environment


def test_unset_variables_leave_every_default() -> None:
    environment = Environment.read({})
    assert environment == Environment()
    assert environment.threads == 0 and environment.models_dirs == () and environment.config_dir is None


def test_each_variable_is_read_as_its_readers_read_it() -> None:
    environment = Environment.read(
        {
            "SEGUE_THREADS": "2",
            "SEGUE_MODELS_DIR": os.pathsep.join(["/models/a", "", "/models/b"]),
            "SEGUE_CONFIG_DIR": "  ~/segue-config ",
            "SEGUE_SERVER_DATA": "/srv/segue",
            "SEGUE_GUI_SETTINGS": "~/gui.json",
        }
    )
    assert environment.threads == 2
    assert environment.models_dirs == (Path("/models/a"), Path("/models/b"))  # empty entries skipped
    assert environment.config_dir == Path("~/segue-config").expanduser()
    assert environment.server_data_dir == Path("/srv/segue")
    assert environment.gui_settings == Path("~/gui.json").expanduser()


def test_blank_values_count_as_unset() -> None:
    environment = Environment.read({"SEGUE_THREADS": "", "SEGUE_CONFIG_DIR": "  ", "SEGUE_GUI_SETTINGS": " "})
    assert environment == Environment.read({}) and environment.threads == 0


def test_a_bad_thread_count_fails_where_it_is_used_not_for_the_other_settings() -> None:
    environment = Environment.read({"SEGUE_THREADS": "many", "SEGUE_SERVER_DATA": "/srv/segue"})
    assert environment.server_data_dir == Path("/srv/segue")
    with pytest.raises(ValueError, match="many"):
        _ = environment.threads


def test_the_readers_take_the_values_they_are_given(tmp_path: Path) -> None:
    from engine.checkpoints import SHIPPED_DIR, search_dirs
    from engine.provenance.record import config_dir
    from engine.server.config import default_data_dir

    environment = Environment(
        models_dirs=(tmp_path / "a", tmp_path / "b"), config_dir=tmp_path / "c", server_data_dir=tmp_path / "d"
    )
    assert search_dirs(environment)[:3] == [SHIPPED_DIR, tmp_path / "a", tmp_path / "b"]
    assert config_dir(environment) == tmp_path / "c"
    assert default_data_dir(environment) == tmp_path / "d"


def test_the_engine_opener_reads_segue_threads_and_the_engine_takes_what_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch = pytest.importorskip("torch")
    from engine.entrypoints import open_engine
    from engine.local import LocalEngine

    threads = torch.get_num_threads()
    monkeypatch.setenv("SEGUE_THREADS", "1")
    try:
        assert LocalEngine(device="cpu").threads == 0  # the variable is read at the entry point, not here
        opened = open_engine("local", device="cpu")
        assert isinstance(opened, LocalEngine) and opened.threads == 1
        given = open_engine("local", device="cpu", threads=2)  # an explicit count wins
        assert isinstance(given, LocalEngine) and given.threads == 2
    finally:
        torch.set_num_threads(threads)
