"""`spatialsearch claims`: every trial's best checkpoint measured alike, grouped by setting
over seeds, each claim with its test (analysis/claims.py)."""

from __future__ import annotations

import json

import pytest

from analysis.claims import Measured, _costs, _mode, claims_tables, measure
from analysis.context import open_checkpoint
from spatialsearch.checkpoint import save_checkpoint
from spatialsearch.cli import main
from spatialsearch.config import trial_config_from_dict
from spatialsearch.evaluation import evaluate
from spatialsearch.measures import task_measures
from spatialsearch.train import Trainer


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
    assert first.values["accuracy"] == pytest.approx(
        evaluate(context.model, context.batches("validation")).accuracy)
    found = task_measures(context.model, 2, 5, context.batches("validation"))
    for key in ("positions_split", "selectivity", "modularity", "segregation"):
        assert first.values[key] == pytest.approx(found[key])  # as the trial logs them
    assert first.setting == {"proximity": 0, "transport": 0} and first.seed == 1
    assert first.chance == 0.2
    assert main(["claims", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| concatenate, α")
            and line.split(" | ")[1].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| concatenate, α 0, β 0",
                                                    "| concatenate, α 1, β 10"]
    assert all(row.split(" | ")[1] == "2" for row in rows)
    assert "| concatenate, α 1, β 10: the costs raise the positions split |" in out
    assert "paired t, n = 2" in out and "5 claims; Holm's correction" in out
    assert (tmp_path / "claims.md").read_text().strip() in out


def _rows(costs, values, accuracy=0.9, seeds=None):
    setting = {"proximity": 1 if costs else 0, "transport": 10 if costs else 0}
    seeds = seeds or range(1, len(values) + 1)
    return [Measured(setting, seed, 0.2, {"accuracy": accuracy, "positions_split": v,
                                          "selectivity": v, "modularity": v / 2,
                                          "segregation": v})
            for seed, v in zip(seeds, values)]


def _verdict(text, claim):
    return text.split(claim)[1].split("\n")[0].rsplit("|", 2)[1].strip()


def test_a_claim_holds_only_when_the_corrected_test_says_so():
    raise_ = ": the costs raise the segregation"
    clear = claims_tables(_rows(True, [0.90, 0.88, 0.92, 0.91, 0.89])
                          + _rows(False, [0.50, 0.48, 0.52, 0.49, 0.51]))
    assert "| concatenate, α 1, β 10" + raise_ + " | 0.900 vs 0.500; Δ +0.400" in clear
    assert _verdict(clear, raise_) == "holds"
    noise = claims_tables(_rows(True, [0.50, 0.70, 0.30, 0.52, 0.48])
                          + _rows(False, [0.52, 0.49, 0.51, 0.50, 0.50]))
    assert _verdict(noise, raise_).startswith("not shown (power ")


def test_three_seeds_against_three_are_not_shown_with_their_power():
    """n = 3 per arm, differences 0.40, 0.05, 0.50 (one-sided paired p 0.073): not shown, and
    the verdict says how little the test could see at the Bonferroni level 0.05 / 5."""
    text = claims_tables(_rows(True, [0.90, 0.60, 0.95]) + _rows(False, [0.50, 0.55, 0.45]))
    verdict = _verdict(text, ": the costs raise the segregation")
    assert verdict.startswith("not shown (power 0.") and "d = 0.8 at α = 0.01" in verdict


def test_accuracy_is_judged_as_non_inferiority_with_both_arms_above_chance():
    keep = ": the costs keep accuracy (loss < 0.05)"
    fine = claims_tables(_rows(True, [0.9] * 5, accuracy=0.88)
                         + _rows(False, [0.5] * 5, accuracy=0.89))
    assert _verdict(fine, keep) == "not shown (power 1.00 at α = 0.01 if no accuracy is lost)" \
        or _verdict(fine, keep) == "holds"
    at_chance = claims_tables(_rows(True, [0.9, 0.8, 0.85, 0.9, 0.95], accuracy=0.2)
                              + _rows(False, [0.5, 0.4, 0.45, 0.5, 0.55], accuracy=0.2))
    assert "an arm at chance" in at_chance and _verdict(at_chance, keep) != "holds"


def test_arms_that_share_no_seed_are_compared_by_welch():
    text = claims_tables(_rows(True, [0.9, 0.8, 0.85], seeds=[1, 2, 3])
                         + _rows(False, [0.5, 0.4, 0.45], seeds=[4, 5, 6]))
    assert "Welch t, n = 3 / 3" in text


def test_a_run_repeated_by_an_unused_grid_key_counts_once():
    from analysis.claims import distinct

    concatenate = {"input": "concatenate", "proximity": 1, "seed": 1}
    assert distinct({**concatenate, "sampler": "random"}) == distinct(
        {**concatenate, "sampler": "task"})
    sequential = {"input": "sequential", "proximity": 1, "seed": 1}
    assert distinct({**sequential, "sampler": "random"}) != distinct(
        {**sequential, "sampler": "task"})
    assert distinct({**concatenate, "seed": 2}) != distinct(concatenate)
