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
