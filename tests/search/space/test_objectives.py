"""Objectives, reseed and conditional keys in a search space: what is accepted, and one line,
exit 2 and nothing written for what is not."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from spatialsearch.cli import main
from spatialsearch.search.engine.tune_space import DefineByRun, param_space, scheduler, searcher
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.space.objectives import Objective
from tests.ids import plain_id
from tests.refusals import assert_refused

BOTH = [{"metric": "val_accuracy", "mode": "max"}, {"metric": "segregation", "mode": "max"}]


def _doc(**changes):
    doc = {"name": "mo", "num_samples": 2, "objectives": BOTH,
           "scheduler": {"type": "moasha", "grace_period": 1},
           "fixed": {"layers": [4], "epochs": 2},
           "space": {"transport": {"loguniform": [0.1, 10]}}}
    doc.update(changes)
    return doc


def test_objectives_parse_and_single_form_stays():
    config = search_config_from_dict(_doc(reseed=3))
    assert config.objectives == (Objective("val_accuracy", "max"), Objective("segregation", "max"))
    assert config.multi_objective and config.metric == "val_accuracy" and config.reseed == 3
    single = search_config_from_dict({"metric": "val_loss", "mode": "min",
                                      "space": {"lr": {"loguniform": [0.001, 0.1]}}})
    assert single.objectives == (Objective("val_loss", "min"),) and not single.multi_objective
    assert search_config_from_dict(_doc(objectives=[{"metric": "val_accuracy_task1"}, {
        "metric": "segregation_layer0", "mode": "max"}])).objectives[0].mode == "max"


BAD = [
    (_doc(objectives=[{"metric": "accuracy", "mode": "max"}, BOTH[1]]),
     r"objectives\[0\]\.metric: must be one of val_accuracy, .*got 'accuracy'"),
    (_doc(objectives=[BOTH[0], dict(BOTH[0])]),
     r"objectives\[1\]\.metric: 'val_accuracy' is already an objective"),
    (_doc(objectives=[BOTH[0], {"metric": "segregation", "mode": "maximise"}]),
     r"objectives\[1\]\.mode: must be one of max, min, got 'maximise'"),
    (_doc(objectives=[BOTH[0]]), r"scheduler\.type: moasha ranks several objectives"),
    (_doc(scheduler={"type": "asha", "grace_period": 1}),
     r"scheduler\.type: asha ranks one metric, this search has 2 objectives"),
    (_doc(reseed=-1), r"reseed: must be an integer >= 0, got -1"),
    (_doc(reseed=1.5), r"reseed: must be an integer >= 0, got 1\.5"),
    (_doc(metric="val_accuracy"), r"metric: give either objectives or metric/mode"),
    (_doc(objectives=[]), r"objectives: must be a non-empty list"),
    (_doc(objectives="val_accuracy"), r"objectives: must be a non-empty list"),
    (_doc(objectives=[BOTH[0], {"metric": "segregation", "direction": "max"}]),
     r"objectives\[1\]: unknown key 'direction'"),
    (_doc(objectives=[BOTH[0], 5]), r"objectives\[1\]: must be a mapping, got 5"),
    (_doc(search={"algorithm": "optuna", "sampler": "cmaes"}),
     r"search\.sampler: cmaes optimises one objective"),
    (_doc(scheduler={"type": "moasha", "grace_period": 3}),
     r"scheduler\.grace_period: must be in \[1, epochs=2\], got 3"),
    (_doc(space={"input": {"choice": ["concatenate", "sequential"]},
                 "sampler": {"choice": ["random", "task"], "when": {"input": "mixed"}}}),
     r"space\.sampler\.when\.input: must be one of .*got 'mixed'"),
    (_doc(space={"input": {"choice": ["concatenate", "mix"]},
                 "sampler": {"choice": ["random", "task"], "when": {"input": "sequential"}}}),
     r"space\.sampler\.when\.input: 'sequential' is not one of the choices of space\.input"),
    (_doc(fixed={"input": "concatenate", "epochs": 2},
          space={"sampler": {"choice": ["random", "task"], "when": {"input": "sequential"}}}),
     r"space\.sampler\.when\.input: fixed\.input is 'concatenate', so sampler would never"),
    (_doc(search={"algorithm": "random"}, scheduler={"type": "fifo"},
          space={"input": {"choice": ["concatenate", "sequential"]},
                 "sampler": {"choice": ["random", "task"], "when": {"input": "sequential"}}}),
     r"space\.sampler\.when\.input: conditional keys need search\.algorithm: optuna"),
    (_doc(space={"sampler": {"choice": ["random", "task"], "when": {"inptu": "sequential"}}}),
     r"space\.sampler\.when\.inptu: unknown key \(did you mean 'input'"),
    (_doc(space={"sampler": {"choice": ["random", "task"], "when": {"sampler": "task"}}}),
     r"space\.sampler\.when\.sampler: a key cannot be conditional on itself"),
    (_doc(space={"lr": {"loguniform": [0.001, 0.1]},
                 "sampler": {"choice": ["random", "task"], "when": {"lr": 0.01}}}),
     r"space\.sampler\.when\.lr: must be a fixed key or an unconditional choice"),
]


@pytest.mark.parametrize("doc,message", BAD, ids=[plain_id(m) for _, m in BAD])
def test_bad_objectives_and_conditions_one_line_exit_2_nothing_written(tmp_path, capsys, doc,
                                                                       message):
    assert_refused(tmp_path, capsys, doc, message)


CONDITIONAL = _doc(fixed={"epochs": 2}, space={
    "input": {"choice": ["concatenate", "sequential"]},
    "sampler": {"choice": ["random", "task"], "when": {"input": "sequential"}},
    "layers": {"choice": [[4], [8, 4]]},
    "lr": {"loguniform": [0.001, 0.1]}})


def test_conditional_key_is_sampled_only_where_its_condition_holds():
    config = search_config_from_dict(CONDITIONAL)
    space = DefineByRun(config.space, {"epochs": 2})
    study = optuna.create_study(directions=["maximize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=3))
    seen = {"concatenate": 0, "sequential": 0}
    for _ in range(40):
        trial = study.ask()
        chosen = space(trial)
        seen[chosen["input"]] += 1
        assert ("sampler" in chosen) == (chosen["input"] == "sequential"), chosen
        assert ("sampler" in trial.params) == (chosen["input"] == "sequential")
        assert chosen["layers"] in ([4], [8, 4])  # lists come back as lists
        study.tell(trial, [0.5, 0.5])
    assert min(seen.values()) >= 10  # both branches taken
    assert "input" not in param_space(config) and param_space(config)["epochs"] == 2


def test_dry_run_shows_condition_and_tune_parts_build(capsys, tmp_path):
    space = tmp_path / "c.yaml"
    space.write_text(yaml.safe_dump(CONDITIONAL))
    assert main(["search", str(space), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 2
    config = search_config_from_dict(CONDITIONAL)
    assert type(scheduler(config)).__name__ == "MultiObjectiveASHA"
    found = searcher(config)
    assert found.metric == ["val_accuracy", "segregation"] and found.mode == ["max", "max"]
    nsga = search_config_from_dict(_doc(search={"algorithm": "optuna", "sampler": "nsga2"}))
    assert type(searcher(nsga)._sampler).__name__ == "NSGAIISampler"
