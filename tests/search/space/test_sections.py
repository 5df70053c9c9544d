"""search/space/sections.py directly: the scheduler, search and resources sections, their defaults
and their one-line refusals."""

from __future__ import annotations

import pytest

from spatialsearch.errors import ConfigError
from spatialsearch.search.space import sections
from spatialsearch.search.space.sections import parse_resources, parse_scheduler, parse_search


def test_absent_sections_are_the_defaults():
    assert parse_scheduler({}) == sections.SchedulerConfig("asha", 2, 2)
    assert parse_search({}) == sections.SearchAlgorithmConfig("optuna", "tpe", 0, True)
    assert parse_resources({}) == sections.ResourcesConfig(1.0, 0.0, ())


def test_given_values_are_kept_in_their_canonical_types():
    scheduler = parse_scheduler({"scheduler": {"type": "moasha", "grace_period": 3,
                                               "reduction_factor": 3}})
    assert scheduler == sections.SchedulerConfig("moasha", 3, 3)
    search = parse_search({"search": {"algorithm": "optuna", "sampler": "nsga2", "seed": 7,
                                      "teach_stopped": False}})
    assert search == sections.SearchAlgorithmConfig("optuna", "nsga2", 7, False)
    resources = parse_resources({"resources": {"cpu": 2, "gpu": 0.25,
                                               "custom": {"tpu_host": 1, "big_mem": 0.5}}})
    assert resources.custom == (("big_mem", 0.5), ("tpu_host", 1.0))
    assert resources.tune_resources() == {"cpu": 2.0, "gpu": 0.25, "big_mem": 0.5,
                                          "tpu_host": 1.0}


@pytest.mark.parametrize("parse, raw, message", [
    (parse_scheduler, {"scheduler": {"type": "hyperband"}},
     "scheduler.type: must be one of asha, moasha, fifo, got 'hyperband'"),
    (parse_scheduler, {"scheduler": {"reduction_factor": 1}},
     "scheduler.reduction_factor: must be an integer >= 2, got 1"),
    (parse_scheduler, {"scheduler": {"grace": 1}}, "scheduler.grace: unknown key"),
    (parse_search, {"search": {"sampler": "bohb"}},
     "search.sampler: must be one of tpe, nsga2, random, cmaes, got 'bohb'"),
    (parse_search, {"search": {"teach_stopped": "yes"}},
     "search.teach_stopped: must be true or false, got 'yes'"),
    (parse_resources, {"resources": {"cpu": 0}}, "resources.cpu: must be a number >= 0.01"),
    (parse_resources, {"resources": {"custom": {"GPU": 1}}},
     "resources.custom: a resource name of the cluster"),
    (parse_resources, {"resources": {"custom": {"tpu": -1}}},
     "resources.custom.tpu: must be a number >= 0, got -1"),
    (parse_resources, {"resources": [1]}, "resources: must be a mapping, got [1]"),
])
def test_each_bad_value_gets_one_line(parse, raw, message):
    with pytest.raises(ConfigError) as error:
        parse(raw)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
