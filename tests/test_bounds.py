"""Every bound of both configs at its exact limit: the value on the limit is accepted, the
next one refused with the key in the message."""

from __future__ import annotations

import pytest

from spatialsearch.config import trial_config_from_dict
from spatialsearch.errors import ConfigError
from spatialsearch.search.space.config import search_config_from_dict
from tests.ids import plain_id

SPACE = {"fixed": {"layers": [4], "epochs": 10},
         "space": {"transport": {"loguniform": [0.1, 10]}}}


def _search(**top):
    doc = {**SPACE, **top}
    return search_config_from_dict(doc)


SEARCH_LIMITS = [  # (accepted, refused, message)
    ({"scheduler": {"type": "asha", "grace_period": 10}},
     {"scheduler": {"type": "asha", "grace_period": 11}}, r"scheduler\.grace_period"),
    ({"scheduler": {"type": "asha", "grace_period": 1}},
     {"scheduler": {"type": "asha", "grace_period": 0}}, r"scheduler\.grace_period"),
    ({"scheduler": {"type": "asha", "reduction_factor": 2}},
     {"scheduler": {"type": "asha", "reduction_factor": 1}}, r"scheduler\.reduction_factor"),
    ({"num_samples": 1}, {"num_samples": 0}, r"num_samples"),
    ({"num_samples": 100_000}, {"num_samples": 100_001}, r"num_samples: at most 100000"),
    ({"max_concurrent_trials": 1}, {"max_concurrent_trials": 0}, r"max_concurrent_trials"),
    ({"max_failures": 0}, {"max_failures": -1}, r"max_failures"),
    ({"checkpoint_every": 1}, {"checkpoint_every": 0}, r"checkpoint_every"),
    ({"analyze": 0}, {"analyze": -1}, r"analyze"),
    ({"reseed": 0}, {"reseed": -1}, r"reseed"),
    ({"resources": {"cpu": 0.01}}, {"resources": {"cpu": 0.009}}, r"resources\.cpu"),
    ({"resources": {"gpu": 0}}, {"resources": {"gpu": -0.01}}, r"resources\.gpu"),
    ({"resources": {"gpu": 2}}, {"resources": {"gpu": 1.5}}, r"resources\.gpu"),
    ({"search": {"algorithm": "optuna", "seed": 0}},
     {"search": {"algorithm": "optuna", "seed": -1}}, r"search\.seed"),
]


@pytest.mark.parametrize("accepted,refused,message", SEARCH_LIMITS,
                         ids=[plain_id(m) for _, _, m in SEARCH_LIMITS])
def test_search_bounds_at_their_limits(accepted, refused, message):
    _search(**accepted)
    with pytest.raises(ConfigError, match=message):
        _search(**refused)


TRAIN_LIMITS = [  # key, accepted, refused
    ("labels", 10, 11), ("labels", 1, 0),
    ("validation_fraction", 0.5, 0.5000001), ("validation_fraction", 1e-9, 0.0),
    ("test_fraction", 0.5, 0.51), ("kernel", 15, 17), ("kernel", 1, -1),
    ("epochs", 1, 0), ("epochs", 100_000, 100_001), ("batch", 1, 0), ("dim", 1, 0), ("train_samples", 0, -1),
    ("seed", 2**32 - 1, 2**32), ("seed", 0, -1), ("lr", 1e-12, 0.0),
    ("positions_lr", 0.0, -1e-12), ("proximity", 0.0, -1e-12), ("transport", 0.0, -1e-9),
]


@pytest.mark.parametrize("key,accepted,refused", TRAIN_LIMITS,
                         ids=[plain_id(f"{k}={r}") for k, _, r in TRAIN_LIMITS])
def test_training_bounds_at_their_limits(key, accepted, refused):
    base = {"type": "convolution"} if key == "kernel" else {}
    trial_config_from_dict({**base, key: accepted})
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        trial_config_from_dict({**base, key: refused})


def test_where_indices_reach_the_head_and_no_further():
    trial_config_from_dict({"layers": [4, 4], "where": [0, 2]})  # 2 = the head
    with pytest.raises(ConfigError, match=r"where\[1\]: spatial layer indices are 0\.\.2"):
        trial_config_from_dict({"layers": [4, 4], "where": [0, 3]})
