"""search/preflight/checks.py directly: every check before Ray starts, each failing with one
line and leaving nothing written; a search that can run passes and still has written nothing."""

from __future__ import annotations

import pytest

from spatialsearch.errors import ConfigError, DataError
from spatialsearch.search.places.ray_folder import RAY_FOLDER
from spatialsearch.search.preflight.checks import check_memory, preflight
from spatialsearch.search.run_context import place_of
from spatialsearch.search.space.config import search_config_from_dict

SPACE = {"name": "pre", "num_samples": 1, "space": {"lr": {"loguniform": [0.01, 0.1]}},
         "fixed": {"datasets": ["digits"], "labels": 5, "layers": [8], "epochs": 2}}


def _config(tmp_path, **changes):
    doc = {**SPACE, "output": str(tmp_path / "runs"), **changes}
    return search_config_from_dict(doc)


def _written(tmp_path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def test_a_search_that_can_run_passes_and_nothing_is_written(tmp_path):
    config = _config(tmp_path)
    preflight(config, place_of(config), resume=False)
    assert _written(tmp_path) == []


def test_a_second_search_of_the_same_name_needs_resume(tmp_path):
    config = _config(tmp_path)
    (config.folder / RAY_FOLDER / config.name).mkdir(parents=True)
    before = _written(tmp_path)
    with pytest.raises(ConfigError, match=r"^output: .* already holds a search named 'pre'; "
                                          r"pass --resume to continue it"):
        preflight(config, place_of(config), resume=False)
    preflight(config, place_of(config), resume=True)  # what --resume is for
    assert _written(tmp_path) == before


def test_resume_needs_a_search_to_resume(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match=r"^--resume: no search to resume at .*/pre/ray/pre'$"):
        preflight(config, place_of(config), resume=True)
    assert _written(tmp_path) == []


def test_an_output_under_a_file_is_refused(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match=r"^output: cannot write to .* is not a folder$"):
        preflight(config, place_of(config), resume=False)


def test_a_local_storage_under_a_file_is_refused(tmp_path):
    (tmp_path / "shared").write_text("not a folder")
    config = _config(tmp_path, storage=str(tmp_path / "shared" / "searches"))
    with pytest.raises(ConfigError, match=r"^storage: cannot write to .* is not a folder$"):
        preflight(config, place_of(config), resume=False)
    assert _written(tmp_path) == ["shared"]


def test_dataset_files_absent_offline_are_named(tmp_path):
    fixed = {**SPACE["fixed"], "datasets": ["MNIST"], "root": str(tmp_path / "data")}
    config = _config(tmp_path, fixed=fixed)
    with pytest.raises(DataError) as error:
        preflight(config, place_of(config), resume=False)
    message = str(error.value)
    assert message.startswith(f"fixed.datasets: MNIST not found under root "
                              f"{str(tmp_path / 'data')!r} (missing ")
    assert "train-images-idx3-ubyte" in message and message.endswith(
        "or set fixed.download: true (online)")
    assert _written(tmp_path) == []


def test_trials_too_large_for_this_machine_are_refused_with_their_size(tmp_path):
    fixed = {**SPACE["fixed"], "layers": [60000, 60000]}
    config = _config(tmp_path, fixed=fixed, max_concurrent_trials=2)
    with pytest.raises(ConfigError) as error:
        check_memory(config)
    message = str(error.value)
    assert message.startswith("fixed/space: a trial of layers [60000, 60000] (linear, ")
    assert "2 at once (max_concurrent_trials) need" in message and "\n" not in message
    check_memory(_config(tmp_path))  # a small one fits
