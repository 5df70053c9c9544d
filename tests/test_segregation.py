"""Segregation's known failure modes (issue 20), each with the value the metric returns and
why (docs/reference.md, "Segregation")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialsearch.config import trial_config_from_dict
from spatialsearch.evaluation import active_neurons
from spatialsearch.models import build_model
from spatialsearch.segregation import UNASSIGNED, greedy_assignment, layer_segregation, segregation
from spatialsearch.train import Trainer


@pytest.mark.parametrize("num_tasks", [2, 3, 4])
def test_random_positions_score_chance(num_tasks):
    """Tasks drawn independently of the positions: the mean over 200 layers is 1/T."""
    rng = np.random.default_rng(num_tasks)
    values = [layer_segregation(rng.uniform(size=(100, 2)), rng.integers(0, num_tasks, 100))
              for _ in range(200)]
    assert np.mean(values) == pytest.approx(1 / num_tasks, abs=0.015)


def test_tasks_in_separate_regions_score_one_and_interleaved_tasks_zero():
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2).astype(float)
    halves = (grid[:, 0] >= 5).astype(int)
    assert layer_segregation(grid, halves) == 1.0
    checkerboard = ((grid[:, 0] + grid[:, 1]) % 2).astype(int)  # 4 nearest: the other task
    assert layer_segregation(grid, checkerboard) < 0.15  # far below chance: anti-segregated


def test_one_task_only_cannot_be_scored_and_counts_at_chance():
    tasks = np.zeros(20, dtype=int)
    assert layer_segregation(np.random.default_rng(0).normal(size=(20, 2)), tasks) == (
        "all 20 assigned neurons belong to one task")


@pytest.mark.parametrize("small", [2, 3, 5, 10])
def test_a_tiny_task_group_in_a_corner_is_as_segregated_as_a_large_one(small):
    """97/3 and 98/2 alike: k shrinks to the group's neurons left in training (odd), so a
    tight corner group is found whatever its size; the 5-NN vote used to outvote 2."""
    rng = np.random.default_rng(small)
    positions = np.vstack([rng.uniform(size=(100 - small, 2)),
                           [2.0, 2.0] + 0.01 * rng.uniform(size=(small, 2))])
    tasks = np.r_[np.zeros(100 - small, int), np.ones(small, int)]
    assert layer_segregation(positions, tasks) == 1.0


def test_a_tiny_task_group_scattered_at_random_is_not_rewarded():
    """3 task-1 neurons among 97 at random: about chance, never 1 (mean of 100 layers)."""
    rng = np.random.default_rng(0)
    tasks = np.r_[np.zeros(97, int), np.ones(3, int)]
    values = [layer_segregation(rng.uniform(size=(100, 2)), tasks) for _ in range(100)]
    assert np.mean(values) == pytest.approx(0.5, abs=0.05)


def test_one_neuron_per_task_cannot_be_cross_validated():
    assert layer_segregation(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 1])) == (
        "smallest task group has 1 neuron(s); cross-validation needs 2")


def _network(layers, **extra):
    config = trial_config_from_dict({"datasets": ["digits"], "labels": 5, "layers": layers,
                                     **extra})
    return config, build_model(config)


def test_dead_neurons_are_left_out_not_given_to_task_0():
    """Neurons with no outgoing weight used to go to task 0 by the argmax tie; neurons
    never active on the data carry no task either. Both are UNASSIGNED and not scored."""
    _, model = _network([8, 4])
    layers = model.spatial_layers
    with torch.no_grad():
        layers[1].weight.zero_()
        layers[1].weight[0:2, 0:3] = 1.0   # layer-1 neurons 0, 1 fed by 0-2 ...
        layers[1].weight[2:4, 3:6] = 1.0   # ... 2, 3 by 3-5; 6, 7 feed nothing
        layers[2].weight.zero_()
        layers[2].weight[0:5, 0:2] = 1.0   # task 0's heads read neurons 0, 1
        layers[2].weight[5:10, 2:4] = 1.0  # task 1's read 2, 3
    first, second = greedy_assignment(layers, 2, 5)
    assert second.tolist() == [0, 0, 1, 1]
    assert first.tolist() == [0, 0, 0, 1, 1, 1, UNASSIGNED, UNASSIGNED]
    silent = [torch.tensor([True] * 5 + [False] * 3), torch.ones(4, dtype=torch.bool)]
    assert greedy_assignment(layers, 2, 5, active=silent)[0].tolist() == [
        0, 0, 0, 1, 1, UNASSIGNED, UNASSIGNED, UNASSIGNED]
    result = segregation(layers, 2, 5, active=silent)
    assert result.balance == {0: (3, 2), 1: (2, 2)}


def test_a_dead_relu_is_found_never_active_on_the_data():
    config, _ = _network([6, 4], activation="ReLU", device="cpu")
    trainer = Trainer(config)
    with torch.no_grad():
        trainer.model.spatial_layers[0].weight[2].zero_()
        trainer.model.spatial_layers[0].bias[2] = -1.0  # ReLU(-1) = 0 on every input
    active = active_neurons(trainer.model, trainer.validation_batches)
    assert [a.tolist() for a in active][0] == [True, True, False, True, True, True]


def test_every_layer_enters_the_mean_at_chance_when_it_cannot_be_scored():
    """A layer that holds one task counts 1/T, so two networks differing only there are
    compared over the same number of layers (the old mean dropped it and rose)."""
    _, model = _network([8, 4])
    layers = model.spatial_layers
    with torch.no_grad():
        layers[2].weight.zero_()
        layers[2].weight[:, 0] = 1.0  # every head reads neuron 0 of layer 1 only
    result = segregation(layers, 2, 5)
    assert set(result.per_layer) == {0, 1}
    assert result.at_chance and all(result.per_layer[k] == 0.5 for k in result.at_chance)
    assert result.mean == pytest.approx(np.mean(list(result.per_layer.values())))
    assert result.scored == 2 - len(result.at_chance)


def test_a_convolution_layers_channels_are_assigned_by_their_summed_kernels():
    """Channels are the neurons: |W| summed over the kernel; channels placed by task."""
    _, model = _network([6, 4], type="convolution", kernel=3)
    layers = model.spatial_layers
    with torch.no_grad():
        layers[1].weight.zero_()
        layers[1].weight[0:2, 0:3] = 0.1   # conv channels 0, 1 <- 0-2 (9 taps each)
        layers[1].weight[2:4, 3:6] = 0.1
        layers[2].weight.zero_()
        layers[2].weight[0:5, 0:2] = 1.0
        layers[2].weight[5:10, 2:4] = 1.0
        layers[0].positions.copy_(torch.tensor([[0.0, 0], [0, 0.1], [0.1, 0], [5, 5],
                                                [5, 5.1], [5.1, 5]]))
        layers[1].positions.copy_(torch.tensor([[0.0, 0], [0, 0.1], [5, 5], [5, 5.1]]))
    assert [a.tolist() for a in greedy_assignment(layers, 2, 5)] == [[0, 0, 0, 1, 1, 1],
                                                                     [0, 0, 1, 1]]
    result = segregation(layers, 2, 5)
    assert result.per_layer == {0: 1.0, 1: 1.0} and not result.at_chance


def test_modularity_of_a_six_node_graph_is_barbers_hand_computed_q():
    """Layer pair: inputs 0,1 (task 0), 2 (task 1); outputs 0 (task 0), 1,2 (task 1).
    B = |W| (out, in): o0-i0 2, o0-i1 1, o1-i2 3, o2-i2 1, o2-i0 1; m = 8; output strengths
    3, 3, 2, input strengths 3, 1, 4. Barber: task 0: 3/8 - (3/8)(4/8) = 0.1875; task 1:
    4/8 - (5/8)(4/8) = 0.1875; Q_B = 0.375 (networkx's one-layer Q gave 0.3671875)."""
    from spatialsearch.modularity import pair_modularity

    mass = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 1.0]])  # (out, in)
    q = pair_modularity(mass, np.array([0, 0, 1]), np.array([0, 1, 1]))
    assert q == pytest.approx(0.375)
    # a dead input neuron leaves the graph: its edges go, the rest is recomputed
    without = pair_modularity(mass, np.array([0, 0, UNASSIGNED]), np.array([0, 1, 1]))
    assert without == pytest.approx(pair_modularity(mass[:, :2], np.array([0, 0]),
                                                    np.array([0, 1, 1])))
    assert np.isnan(pair_modularity(mass, np.zeros(3, int), np.zeros(3, int)))  # one task


def test_modularity_of_a_partition_that_ignores_the_weights_is_zero():
    """Barber's null fits a bipartite graph: random weights, a 90/10 split of the inputs and
    50/50 of the outputs (the issue's case: networkx's Q gave -0.079), and a random partition,
    both score 0 within sampling noise."""
    from spatialsearch.modularity import pair_modularity

    rng = np.random.default_rng(0)
    mass = np.abs(rng.normal(size=(200, 400)))
    skewed = pair_modularity(mass, (np.arange(400) >= 360).astype(int),
                             (np.arange(200) >= 100).astype(int))
    shuffled = pair_modularity(mass, rng.integers(0, 2, 400), rng.integers(0, 2, 200))
    assert abs(skewed) < 0.005 and abs(shuffled) < 0.005


def wired_by_task(second_task_weight: float = 1.0) -> list:
    """Spatial layers of a [4, 4] digits network, every weight inside its task: hidden
    neurons 0-1 and head 0-4 are task 0, neurons 2-3 and head 5-9 task 1."""
    _, model = _network([4, 4])
    layers = model.spatial_layers
    with torch.no_grad():
        for layer in layers[1:]:
            layer.weight.zero_()
        layers[1].weight[0:2, 0:2] = 1.0
        layers[1].weight[2:4, 2:4] = 1.0
        layers[2].weight[0:5, 0:2] = 1.0
        layers[2].weight[5:10, 2:4] = second_task_weight
    return layers


def test_modularity_of_a_network_wired_by_task_is_one_minus_one_over_t():
    """Every weight inside its task, tasks of equal strength: Q = 1 - 1/T for every pair."""
    from spatialsearch.modularity import modularity

    assert modularity(wired_by_task(), 2, 5) == pytest.approx({0: 0.5, 1: 0.5})


def test_modularity_is_an_objective_with_chance_at_zero():
    from spatialsearch.search.space.config import search_config_from_dict

    config = search_config_from_dict({
        "objectives": [{"metric": "val_accuracy", "mode": "max"},
                       {"metric": "modularity", "mode": "max"}],
        "scheduler": {"type": "moasha"}, "fixed": {"datasets": ["digits"], "labels": 5},
        "space": {"transport": {"loguniform": [0.1, 100]}}})
    assert config.objectives[1].reference_value(5, 2, otherwise=-1.0) == 0.0
