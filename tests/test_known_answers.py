"""Known answers, worked out by hand, for what the slow tests only caught statistically:
greedy assignment, task mass, every split's masks and factors, and the masked weights.

The network: digits, labels 5 (two tasks, head neurons 0-4 are task 0, 5-9 task 1), hidden
layers [4, 3]. Head weights (10 x 3), by hidden-1 neuron:
    n0: 1 from head rows 0-4                       -> mass (task 0, task 1) = (5, 0)
    n1: 3 from rows 1 and 3, 1 from rows 5-9       -> (6, 5): task 0
    n2: 1 from rows 5-9                            -> (0, 5): task 1
(Assigning head rows by j % 2 instead of j // 5 would give n1 (2, 9): task 1.)
Hidden-1 weights (3 x 4): n0 <- h0, n1 <- h1, n2 <- h2 and h3, all 1: hidden-0 masses
(1, 0), (1, 0), (0, 1), (0, 1).
"""

from __future__ import annotations

import pytest
import torch

from analysis.context import open_checkpoint
from analysis.split import masks_for, split
from spatialsearch.checkpoint import save_checkpoint
from spatialsearch.config import trial_config_from_dict
from spatialsearch.models import build_model
from spatialsearch.segregation import greedy_assignment, task_mass

HEAD = torch.zeros(10, 3)
HEAD[0:5, 0] = 1.0
HEAD[[1, 3], 1] = 3.0
HEAD[5:10, 1] = 1.0
HEAD[5:10, 2] = 1.0
HIDDEN1 = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 1.0]])


@pytest.fixture()
def context(tmp_path):
    config = trial_config_from_dict({"datasets": ["digits"], "labels": 5, "layers": [4, 3]})
    model = build_model(config)
    layers = model.spatial_layers
    with torch.no_grad():
        layers[0].weight.fill_(0.01)
        layers[1].weight.copy_(HIDDEN1)
        layers[2].weight.copy_(HEAD)
        for layer in layers:
            layer.bias.fill_(0.5)
    path = tmp_path / "hand.pt"
    save_checkpoint(path, model, config, 1, {})
    return open_checkpoint(path)


def test_task_mass_and_greedy_assignment(context):
    layers = context.model.spatial_layers
    mass = task_mass(layers, 2, 5, "summed")  # the seed's rule
    assert mass[1].tolist() == [[5.0, 6.0, 0.0], [0.0, 5.0, 5.0]]  # (task, neuron)
    assert mass[0].tolist() == [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
    assert [a.tolist() for a in greedy_assignment(layers, 2, 5, "summed")] == [
        [0, 0, 1, 1], [0, 0, 1]]
    per_neuron = task_mass(layers, 2, 5)  # the default: / neurons of the task in layer k+1
    assert torch.allclose(per_neuron[1], torch.tensor([[1.0, 1.2, 0.0], [0.0, 1.0, 1.0]]))
    assert per_neuron[0].tolist() == [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]  # 2 and 1
    assert [a.tolist() for a in greedy_assignment(layers, 2, 5)] == [[0, 0, 1, 1], [0, 0, 1]]


def test_greedy_split_masks_and_the_masked_weights(context):
    result = split(context, "greedy")
    assert result.assignment == [[0, 0, 1, 1], [0, 0, 1]]
    assert [m.tolist() for m in result.masks[0]] == [[1, 1, 0, 0], [1, 1, 0]]
    assert [m.tolist() for m in result.masks[1]] == [[0, 0, 1, 1], [0, 0, 1]]
    task0 = result.networks[0].spatial_layers
    # removed hidden-0 neurons 2, 3: no incoming weights, no bias, no outgoing weights
    assert torch.all(task0[0].weight[2:] == 0) and torch.all(task0[0].weight[:2] == 0.01)
    assert task0[0].bias.tolist() == [0.5, 0.5, 0.0, 0.0]
    assert task0[1].weight.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert task0[1].bias.tolist() == [0.5, 0.5, 0.0]
    expected_head = HEAD.clone()
    expected_head[:, 2] = 0  # hidden-1 neuron 2 removed; the head itself is never masked
    assert torch.equal(task0[2].weight, expected_head)
    assert task0[2].bias.tolist() == [0.5] * 10
    task1 = result.networks[1].spatial_layers
    assert task1[1].weight.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    assert torch.equal(task1[2].weight[:, 2], HEAD[:, 2])


def test_rescale_factors_are_mass_over_the_largest_mass(context):
    masks, assignment = masks_for(context, "rescale")
    assert assignment == []
    assert masks[0][1].tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert masks[1][1].tolist() == pytest.approx([0.0, 5 / 6, 1.0])  # not 5/11: max, not sum
    assert masks[0][0].tolist() == [1.0, 1.0, 0.0, 0.0]
    network = split(context, "rescale").networks[1].spatial_layers
    assert network[2].weight[:, 1].tolist() == pytest.approx((HEAD[:, 1] * 5 / 6).tolist())


def test_probability_keeps_a_neuron_with_its_rescale_factor(context):
    kept = torch.zeros(3)
    seeds = 600
    for seed in range(seeds):
        masks, _ = masks_for(context, "probability", seed=seed)
        assert masks[1][1][0] == 0 and masks[1][1][2] == 1  # factors 0 and 1: certain
        assert masks[0][0].tolist() == [1.0, 1.0, 0.0, 0.0]
        kept += masks[1][1]
    # 5/6 = 0.833 (sum-normalised it would be 5/11 = 0.455); binomial sd 0.015 at 600 seeds
    assert kept[1] / seeds == pytest.approx(5 / 6, abs=0.06)


def test_a_saved_split_is_a_checkpoint_of_the_masked_network(context, tmp_path):
    """save_split writes each task's network in the checkpoint format (loadable as one,
    with the masks beside) and the assignment with the weight each task kept."""
    import json

    from analysis.split import save_split
    from spatialsearch.checkpoint import load_checkpoint

    result = split(context, "greedy")
    paths = save_split(result, context, tmp_path / "new" / "splits")
    assert [p.name for p in paths] == ["split_greedy_task0.pt", "split_greedy_task1.pt"]
    for task, path in enumerate(paths):
        loaded = load_checkpoint(path)
        assert loaded.epoch == 1 and loaded.metrics == {}
        assert loaded.config == context.config
        network = result.networks[task].state_dict()
        assert all(torch.equal(loaded.state_dict[k], network[k]) for k in network)
        extra = torch.load(path, weights_only=True)["split"]
        assert extra["method"] == "greedy" and extra["task"] == task
        assert [m.tolist() for m in extra["masks"]] == [m.tolist() for m in result.masks[task]]
    saved = json.loads((tmp_path / "new" / "splits" / "assignment_greedy.json").read_text())
    assert saved == {"method": "greedy", "layers": [[0, 0, 1, 1], [0, 0, 1]],
                     "kept": [[2.0, 2.0], [2.0, 1.0]]}


def test_probability_masks_are_drawn_from_the_seed(context):
    """The same seed gives the same masks (the split's own generator, not torch's global
    one), and leaving the seed out means seed 0."""
    draws = [[masks_for(context, "probability", seed=seed)[0] for _ in range(2)]
             for seed in range(20)]
    for first, second in draws:
        assert all(torch.equal(a, b) for t, u in zip(first, second) for a, b in zip(t, u))
    default = masks_for(context, "probability")[0]
    assert all(torch.equal(a, b) for t, u in zip(default, draws[0][0]) for a, b in zip(t, u))
    assert [m.tolist() for m in split(context, "probability").masks[1]] == [
        m.tolist() for m in draws[0][0][1]]


def test_rescale_factors_do_not_depend_on_the_weights_scale(context):
    """Factors are mass over the largest mass: a network with every weight x 1e-3 (masses
    below 1) gets the same factors."""
    with torch.no_grad():
        for layer in context.model.spatial_layers:
            layer.weight.mul_(1e-3)
    masks, _ = masks_for(context, "rescale")
    assert masks[1][1].tolist() == pytest.approx([0.0, 5 / 6, 1.0])
    assert masks[0][1].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_the_activations_split_needs_a_recording(context):
    from spatialsearch.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        masks_for(context, "activations")
    assert str(refused.value) == "method: activations needs a recording (analysis.record)"


def test_positions_split_clusters_the_neurons_where_they_lie(tmp_path):
    """Hidden layers [4, 3, 2]; neurons placed around (-5, 0) or (5, 0) regardless of their
    weights: the positions method's two clusters are exactly those groups, per layer (KMeans'
    labels are arbitrary, so the test compares groups)."""
    config = trial_config_from_dict({"datasets": ["digits"], "labels": 5, "layers": [4, 3, 2]})
    model = build_model(config)
    left = [[0, 2], [1], [0]]  # per hidden layer: the neurons placed on the left
    with torch.no_grad():
        for k, layer in enumerate(model.spatial_layers[:-1]):
            x = torch.full((layer.num_neurons,), 5.0)
            x[left[k]] = -5.0
            layer.positions.copy_(torch.stack([x + 0.1 * torch.arange(len(x)),
                                               torch.zeros_like(x)], 1))
    save_checkpoint(tmp_path / "placed.pt", model, config, 1, {})
    masks, assignment = masks_for(open_checkpoint(tmp_path / "placed.pt"), "positions")
    left_label = int(assignment[0][0])
    assert [a.tolist() for a in assignment] == [
        [left_label if n in left[k] else 1 - left_label for n in range(size)]
        for k, size in enumerate([4, 3, 2])]
    assert [m.tolist() for m in masks[left_label]] == [[1, 0, 1, 0], [0, 1, 0], [1, 0]]
