"""The measures of function a trial logs (issue 31, item 1), with known answers: selectivity
(per-neuron task preference from weight mass), the positions split (the network cut by
space alone, scored on every task) and its k-means; and how each relates to segregation in
the issue's constructed layer, where segregation saturates and they do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.context import open_checkpoint
from analysis.score import score
from analysis.split import split
from spatialsearch import metrics as m
from spatialsearch.checkpoint import save_checkpoint
from spatialsearch.config import trial_config_from_dict
from spatialsearch.models import build_model
from spatialsearch.positions_split import kmeans, matched_order, positions_split
from spatialsearch.segregation import layer_segregation
from spatialsearch.selectivity import neuron_selectivity, selectivity
from spatialsearch.train import Trainer
from tests.test_segregation import wired_by_task


def test_selectivity_known_answers():
    """Shares (0.5, 0.5) -> 0; (1, 0) -> 1; (0.51, 0.49) -> 0.02; three tasks (0.5, 0.25,
    0.25) -> (3 x 0.5 - 1) / 2 = 0.25; no mass -> NaN."""
    mass = np.array([[1.0, 2.0, 0.51, 0.0], [1.0, 0.0, 0.49, 0.0]])
    assert neuron_selectivity(mass)[:3] == pytest.approx([0.0, 1.0, 0.02])
    assert np.isnan(neuron_selectivity(mass)[3])
    assert neuron_selectivity(np.array([[2.0], [1.0], [1.0]])) == pytest.approx([0.25])


def test_a_weak_preference_placed_tightly_saturates_segregation_not_selectivity():
    """The issue's layer: 100 neurons, each preferring one task by 2% of its mass. Placed in
    two tight clusters by preferred task, segregation is 1.000; selectivity says 0.02."""
    rng = np.random.default_rng(0)
    tasks = np.repeat([0, 1], 50)
    positions = np.where(tasks[:, None] == 0, 0.0, 1.0) + rng.normal(0, 0.01, (100, 2))
    assert layer_segregation(positions, tasks) == 1.0
    mass = np.where(tasks == 0, [[0.51], [0.49]], [[0.49], [0.51]])
    assert neuron_selectivity(mass) == pytest.approx(np.full(100, 0.02))


def test_selectivity_of_a_network_wired_by_task_is_one():
    assert selectivity(wired_by_task(0.5), 2, 5) == pytest.approx({0: 1.0, 1: 1.0})


def test_kmeans_finds_separated_clusters_and_is_seeded():
    rng = np.random.default_rng(1)
    points = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(3, 0.1, (20, 2)),
                        rng.normal((0, 3), 0.1, (10, 2))])
    labels = kmeans(points, 3)
    assert [len(set(labels[a:b])) for a, b in ((0, 30), (30, 50), (50, 60))] == [1, 1, 1]
    assert len(set(labels)) == 3
    assert np.array_equal(kmeans(points, 3, seed=5), kmeans(points, 3, seed=5))


def test_matching_takes_the_permutation_with_the_largest_diagonal():
    assert matched_order(np.array([[0.2, 0.9], [0.8, 0.3]])) == [1, 0]
    matrix = np.random.default_rng(2).random((8, 8))  # Hungarian beyond 7 tasks
    order = matched_order(matrix)
    assert sorted(order) == list(range(8))
    from scipy.optimize import linear_sum_assignment

    assert np.trace(matrix[order]) == pytest.approx(matrix[linear_sum_assignment(-matrix)].sum())


def _placed_network():
    """Hidden layers [4, 4]; neurons 0-1 of each layer at (0, 0), 2-3 at (5, 5)."""
    config = trial_config_from_dict({"datasets": ["digits"], "labels": 5, "layers": [4, 4]})
    model = build_model(config)
    with torch.no_grad():
        for layer in model.spatial_layers[:-1]:
            layer.positions.copy_(torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0],
                                                [5.1, 5.0]]))
    return model


def test_positions_split_of_regions_that_each_serve_one_task():
    """A scorer that reads which neurons a cut kept: the region of neurons 0-1 serves task 0
    (0.9 on it, 0.1 on task 1), the other region task 1. Diagonal 0.9, off-diagonal 0.1,
    gap 0.8, whichever region k-means numbers first."""
    def accuracy(network):
        kept = network.spatial_layers[0].weight.abs().sum(1) > 0
        return [0.9, 0.1] if bool(kept[0]) else [0.1, 0.9]

    result = positions_split(_placed_network(), 2, accuracy)
    assert result.diagonal == pytest.approx(0.9) and result.off_diagonal == pytest.approx(0.1)
    assert result.gap == pytest.approx(0.8)
    shared = positions_split(_placed_network(), 2, lambda network: [0.6, 0.6])
    assert shared.gap == 0.0  # regions that serve both tasks alike: chance


def test_the_trials_positions_split_is_the_analysis_positions_score(tmp_path):
    """What a trial logs equals what `spatialsearch analyze` scores for the same checkpoint."""
    config = trial_config_from_dict({"datasets": ["digits"], "labels": 5, "layers": [24, 16],
                                     "epochs": 3, "proximity": 1, "transport": 5})
    trainer = Trainer(config)
    for _ in range(3):
        results = trainer.run_epoch()
    measured = trainer.task_measures(trainer.best_model())
    path = tmp_path / "best.pt"
    save_checkpoint(path, trainer.best_model(), config, trainer.epoch, results)
    context = open_checkpoint(path)
    analysed = score(context, split(context, "positions"))
    assert measured[m.POSITIONS_SPLIT] == pytest.approx(analysed.diagonal - analysed.off_diagonal)
    assert measured[m.POSITIONS_SPLIT_DIAGONAL] == pytest.approx(analysed.diagonal)
    for key in (m.SELECTIVITY, m.MODULARITY, m.SEGREGATION):
        assert np.isfinite(measured[key])
