"""search/tune_run.py directly (no trials run): the trainable carries the search's resources,
and a --resume with nothing restorable is refused with one line."""

from __future__ import annotations

import pytest

from spatialsearch.errors import ConfigError
from spatialsearch.search.run_context import place_of
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.tune_run import _tuner, search_trainable


def _config(tmp_path, **changes):
    return search_config_from_dict({
        "name": "tr", "output": str(tmp_path / "runs"),
        "fixed": {"datasets": ["digits"], "labels": 5, "layers": [8], "epochs": 2},
        "space": {"lr": {"uniform": [0.01, 0.1]}}, **changes})


def test_the_trainable_reserves_the_search_resources(tmp_path):
    config = _config(tmp_path, resources={"cpu": 2, "gpu": 0.5, "custom": {"big": 1}})
    resources = search_trainable(config).default_resource_request({})
    assert resources.required_resources == {"CPU": 2.0, "GPU": 0.5, "big": 1.0}


def test_resume_without_a_restorable_experiment_is_refused(tmp_path):
    config = _config(tmp_path)
    place = place_of(config)
    with pytest.raises(ConfigError, match=r"^--resume: no restorable search at '.*/tr/ray/tr'$"):
        _tuner(config, search_trainable(config), [], True, place.child("ray", "tr"),
               place.child("resume"))
