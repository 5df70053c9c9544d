"""`spatialsearch claims`: every trial's best checkpoint measured alike, grouped by setting
over seeds, each claim with its test (analysis/claims.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.claims import Measured, _costs, _mode, claims_tables, measure
from analysis.context import open_checkpoint
from spatialsearch.checkpoint import save_checkpoint
from spatialsearch.cli import main
from spatialsearch.config import trial_config_from_dict
from spatialsearch.train import Trainer, evaluate


@pytest.mark.parametrize("setting, costs, mode", [
    ({"proximity": 1, "transport": 10, "input": "concatenate"}, "costs", "concatenate"),
    ({"proximity": 0, "transport": 0, "input": "mix", "sampler": "task"}, "none", "mix"),
    ({"proximity": 1, "transport": 0, "input": "sequential", "sampler": "task"},
     "proximity only", "sequential, task sampler"),
    ({"proximity": 0, "transport": 10, "input": "mix"}, "transport only", "mix"),
    ({"input": "sequential"}, "none", "sequential, random sampler"),
])
def test_settings_are_named_by_costs_and_input_mode(setting, costs, mode):
    assert (_costs(setting), _mode(setting)) == (costs, mode)


def _search_folder(tmp_path):
    """A finished search's folder: 2 settings x 2 seeds of a tiny digits network."""
    table = []
    for proximity, transport in ((0, 0), (1, 10)):
        for seed in (1, 2):
            params = {"proximity": proximity, "transport": transport, "seed": seed}
            config = trial_config_from_dict({"datasets": ["digits"], "labels": 5,
                                             "layers": [16, 12], "epochs": 2,
                                             "device": "cpu", **params})
            trainer = Trainer(config)
            for _ in range(2):
                trainer.run_epoch()
            path = tmp_path / f"trial-{proximity}-{seed}.pt"
            save_checkpoint(path, trainer.best_model(), config, 2, trainer.best_metrics)
            table.append({"trial_id": path.stem, "params": params, "checkpoint": str(path)})
    (tmp_path / "summary.json").write_text(json.dumps({"table": table}))
    return table


def test_claims_measure_every_checkpoint_and_print_one_row_per_setting(tmp_path, capsys):
    table = _search_folder(tmp_path)
    first = measure(table[0]["checkpoint"], table[0]["params"])
    context = open_checkpoint(table[0]["checkpoint"])
    assert first.accuracy == pytest.approx(
        evaluate(context.model, context.batches("validation")).accuracy)
    assert first.setting == {"proximity": 0, "transport": 0}  # the seed is not a setting
    assert 0 <= first.segregation <= 1 and 0 <= first.diagonal <= 1
    assert main(["claims", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| concatenate |")]
    assert [row.split(" | ")[1] for row in rows] == ["costs", "none"]
    assert all(row.count("(n=2)") == 5 for row in rows)
    assert "| concatenate: the costs raise segregation |" in out
    assert (tmp_path / "claims.md").read_text().strip() in out


def test_a_claim_holds_only_when_the_test_says_so():
    def rows(costs, segregation):
        setting = {"proximity": 1 if costs else 0, "transport": 10 if costs else 0}
        return [Measured(setting, 0.9, s, s / 2, 0.9, 0.2 if costs else 0.5)
                for s in segregation]

    clear = claims_tables(rows(True, [0.90, 0.88, 0.92]) + rows(False, [0.50, 0.48, 0.52]))
    assert "| concatenate: the costs raise segregation | 0.900 vs 0.500" in clear
    assert clear.split("the costs raise segregation")[1].split("\n")[0].endswith("| yes |")
    noise = claims_tables(rows(True, [0.50, 0.70, 0.30]) + rows(False, [0.52, 0.49, 0.51]))
    assert noise.split("the costs raise segregation")[1].split("\n")[0].endswith("| no |")
    assert np.isclose(float(clear.split("the costs raise segregation | ")[1][:5]), 0.9)


def test_a_run_repeated_by_an_unused_grid_key_counts_once():
    from analysis.claims import distinct

    concatenate = {"input": "concatenate", "proximity": 1, "seed": 1}
    assert distinct({**concatenate, "sampler": "random"}) == distinct(
        {**concatenate, "sampler": "task"})
    sequential = {"input": "sequential", "proximity": 1, "seed": 1}
    assert distinct({**sequential, "sampler": "random"}) != distinct(
        {**sequential, "sampler": "task"})
    assert distinct({**concatenate, "seed": 2}) != distinct(concatenate)
