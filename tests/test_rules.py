"""Property tests: what the validators accept, against the rules written out independently
here (not only "no traceback"): a validator that accepts what it should refuse fails them."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from spatialsearch.config import trial_config_from_dict
from spatialsearch.errors import ConfigError
from spatialsearch.search.space.config import search_config_from_dict

SPACE = {"fixed": {"layers": [4, 4, 4], "epochs": 10}, "scheduler": {"type": "fifo"},
         "space": {"transport": {"loguniform": [0.1, 10]}}}
ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 200_000),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                st.lists(st.integers(0, 3), max_size=2))

#: search keys that take an integer in [low, high]
INTEGER_KEYS = {"num_samples": (1, 100_000), "max_concurrent_trials": (1, math.inf),
                "max_failures": (0, math.inf), "checkpoint_every": (1, math.inf),
                "analyze": (0, math.inf), "reseed": (0, 100)}
#: training keys that take a finite number: (low, high, low excluded)
NUMBER_KEYS = {"proximity": (0, math.inf, False), "transport": (0, math.inf, False),
               "lr": (0, math.inf, True), "positions_lr": (0, math.inf, False),
               "validation_fraction": (0, 0.5, True), "test_fraction": (0, 0.5, True)}
METRICS = ["val_accuracy", "val_loss", "train_loss", "segregation", "proximity", "transport",
           "val_accuracy_task0", "segregation_layer2"]
#: well-formed, but naming a task or hidden layer the space's trials do not have (2 tasks of
#: digits at labels 5; 3 hidden layers)
ABSENT = ["val_accuracy_task2", "segregation_layer3"]


def _accepted(build, *args) -> bool:
    try:
        build(*args)
    except ConfigError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(INTEGER_KEYS)), ANY)
def test_integer_search_keys(key, value):
    low, high = INTEGER_KEYS[key]
    rule = type(value) is int and low <= value <= high
    assert _accepted(search_config_from_dict, {**SPACE, key: value}) == rule, (key, value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(NUMBER_KEYS)), ANY)
def test_number_training_keys(key, value):
    low, high, open_low = NUMBER_KEYS[key]
    number = type(value) in (int, float) and math.isfinite(value)
    rule = number and (value > low if open_low else value >= low) and value <= high
    assert _accepted(trial_config_from_dict, {key: value}) == rule, (key, value)


OBJECTIVE = st.fixed_dictionaries({"metric": st.one_of(st.sampled_from(METRICS + ABSENT), st.text(
    max_size=6))}, optional={"mode": st.sampled_from(["max", "min", "maximise", ""])})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(OBJECTIVE, max_size=4), ANY))
def test_objectives(objectives):
    rule = (isinstance(objectives, list) and len(objectives) > 0
            and all(isinstance(o, dict) for o in objectives)
            and all(o["metric"] in METRICS and o.get("mode", "max") in ("max", "min")
                    for o in objectives)
            and len({o["metric"] for o in objectives}) == len(objectives))
    doc = {**SPACE, "objectives": objectives}
    assert _accepted(search_config_from_dict, doc) == rule, objectives
