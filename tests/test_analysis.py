"""Analysis: record, plot, split (all methods, masks), score, the CLI, and the paper's effect."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from analysis.analyze import analyze
from analysis.context import open_checkpoint
from analysis.methods import METHODS
from analysis.record import load_recording, record, save_recording
from analysis.score import score
from analysis.split import split
from spatialsearch.checkpoint import save_checkpoint
from spatialsearch.cli import main
from spatialsearch.config import trial_config_from_dict
from spatialsearch.data.idx import DEBIAN_FASHION_MNIST
from spatialsearch.errors import CheckpointError
from spatialsearch.train import Trainer
from tests.ids import plain_id

REFERENCE = {"datasets": ["digits"], "labels": 5, "input": "concatenate",
             "layers": [150, 100, 50], "activation": "Sigmoid", "norm": "l2", "epochs": 50}


def _checkpoint(tmp_path, name="ckpt.pt", epochs=2, **overrides):
    config = trial_config_from_dict({"layers": [12, 10], "epochs": epochs, "proximity": 1,
                                     "transport": 5, **overrides})
    trainer = Trainer(config)
    for _ in range(epochs):
        results = trainer.run_epoch()
    path = tmp_path / name
    save_checkpoint(path, trainer.best_model(), config, trainer.epoch, results)
    return path


MODES = [("linear", "concatenate"), ("linear", "mix"), ("linear", "sequential"),
         ("convolution", "concatenate"), ("convolution", "mix"), ("convolution", "sequential")]


@pytest.mark.parametrize("model_type,mode", MODES, ids=[f"{a}-{b}" for a, b in MODES])
def test_every_method_splits_every_model_and_mode(tmp_path, model_type, mode):
    path = _checkpoint(tmp_path, type=model_type, input=mode,
                       **({"layers": [6, 5]} if model_type == "convolution" else {}))
    context = open_checkpoint(path)
    recording = record(context)
    for method in METHODS:
        result = split(context, method, recording)
        assert len(result.networks) == 2 and len(result.masks) == 2
        for masks in result.masks:
            assert [len(m) for m in masks] == [layer.num_neurons
                                               for layer in context.model.spatial_layers[:-1]]
            assert all(((m >= 0) & (m <= 1)).all() for m in masks)
        scored = score(context, result)
        assert scored.matrix.shape == (2, 2)
        assert ((scored.matrix >= 0) & (scored.matrix <= 1)).all()


@pytest.mark.parametrize("model_type", ["linear", "convolution"])
@pytest.mark.parametrize("method", ["greedy", "positions", "probability"])
def test_a_removed_neuron_contributes_nothing_downstream(tmp_path, model_type, method):
    """Perturb the activation of every removed neuron: the split network's output is
    exactly unchanged; perturbing a kept neuron changes it."""
    path = _checkpoint(tmp_path, type=model_type, layers=[8, 6])
    context = open_checkpoint(path)
    result = split(context, method, seed=3)
    batch = next(context.batches().epoch(shuffle=False)).inputs[:16]
    for task, (network, masks) in enumerate(zip(result.networks, result.masks)):
        baseline = network(batch)
        for k, mask in enumerate(masks):
            for target in (mask == 0, mask == 1):
                if not target.any():
                    continue

                def perturb(module, inputs, output, target=target):
                    noise = torch.randn_like(output) * 5
                    shape = [1, -1] + [1] * (output.dim() - 2)
                    return output + noise * target.view(shape).to(output.dtype)

                handle = network.activations[k].register_forward_hook(perturb)
                changed = network(batch)
                handle.remove()
                if target is not None and bool((mask == 0).equal(target)):
                    assert torch.equal(changed, baseline), (task, k)
                else:
                    assert not torch.equal(changed, baseline), (task, k)


def test_rescale_scales_outgoing_weights_by_relative_mass(tmp_path):
    context = open_checkpoint(_checkpoint(tmp_path))
    result = split(context, "rescale")
    layers = context.model.spatial_layers
    for task, network in enumerate(result.networks):
        factors = result.masks[task][1]
        expected = layers[2].weight * factors[None, :]
        torch.testing.assert_close(network.spatial_layers[2].weight, expected)
        assert float(factors.max()) <= 1.0


def test_record_matches_a_direct_computation_and_round_trips(tmp_path):
    context = open_checkpoint(_checkpoint(tmp_path))
    recording = record(context, batch=7)  # batching must not change the statistics
    task = context.data.validation[1]
    inputs = torch.zeros(len(task.labels), 2, 8, 8)
    inputs[:, 1:2] = task.images()  # task 1 alone: task 0's channel zeroed
    with torch.no_grad():
        direct = context.model.features(inputs)
    for k, output in enumerate(direct):
        np.testing.assert_allclose(recording.mean[1][k], output.double().mean(0).numpy(),
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(recording.variance[1][k],
                                   output.double().var(0, unbiased=False).numpy(),
                                   rtol=1e-5, atol=1e-9)
    save_recording(recording, tmp_path / "rec.npz")
    again = load_recording(tmp_path / "rec.npz", context)
    assert again.meta["tasks"] == 2 and again.layer_sizes == [12, 10, 10]
    with np.load(tmp_path / "rec.npz") as file:
        assert {"mean_t0_k0", "var_t1_k2", "meta"} <= set(file.files)


def test_recording_from_another_model_is_refused(tmp_path):
    small = open_checkpoint(_checkpoint(tmp_path, "a.pt"))
    save_recording(record(small), tmp_path / "a.npz")
    other = open_checkpoint(_checkpoint(tmp_path, "b.pt", layers=[9]))
    with pytest.raises(CheckpointError, match="was made from another model"):
        load_recording(tmp_path / "a.npz", other)


def test_analyze_writes_every_file_and_plots_are_real_pngs(tmp_path):
    path = _checkpoint(tmp_path)
    report = analyze(path, tmp_path / "out", connections=True)
    out = tmp_path / "out"
    assert set(report["scores"]) == set(METHODS)
    for name in ["recording.npz", "analysis.json", "positions/layers.png",
                 *(f"positions/layer_{k}.png" for k in range(3)),
                 *(f"score_{m}.csv" for m in METHODS), *(f"score_{m}.png" for m in METHODS),
                 "splits/split_greedy_task0.pt", "splits/assignment_positions.json"]:
        assert (out / name).is_file(), name
    for png in out.rglob("*.png"):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    split_checkpoint = torch.load(out / "splits" / "split_greedy_task0.pt", weights_only=True)
    assert split_checkpoint["split"]["method"] == "greedy"


ALL_METHODS = "method: must be one of greedy, probability, rescale, activations, positions"
BAD = [
    (["analyze", "{tmp}/missing.pt"], "checkpoint: no file at"),
    (["analyze", "{tmp}/corrupt.pt"], "is not a readable checkpoint"),
    (["analyze", "{tmp}/good.pt", "--methods", "kmeans"], ALL_METHODS),
    (["split", "{tmp}/good.pt", "--method", "random"], ALL_METHODS),
    (["plot", "{tmp}/good.pt", "--recording", "{tmp}/other.npz"], "was made from another model"),
    (["score", "{tmp}/good.pt", "--recording", "{tmp}/corrupt.pt", "--method", "activations"],
     "is not a spatialsearch recording"),
    (["analyze", "{tmp}/threetasks.pt"], "task count"),
]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    good = _checkpoint(folder, "good.pt")
    (folder / "corrupt.pt").write_bytes(good.read_bytes()[:300])
    other = open_checkpoint(_checkpoint(folder, "other.pt", layers=[5]))
    save_recording(record(other), folder / "other.npz")
    raw = torch.load(good, weights_only=True)
    raw["config"]["labels"] = 4  # 3 tasks: the head no longer fits
    torch.save(raw, folder / "threetasks.pt")
    return folder


@pytest.mark.parametrize("argv,message", BAD, ids=[plain_id(m) for _, m in BAD])
def test_bad_analysis_input_is_one_message_exit_2_nothing_written(bad_inputs, tmp_path, capsys,
                                                                 argv, message):
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(bad_inputs)) for a in argv] + ["--out", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    if message == "task count":
        assert "weights do not match" in err
    else:
        assert message in err
    assert code == 2 and err.count("\n") == 1
    assert not out.exists()


FASHION = {**REFERENCE, "datasets": ["FashionMNIST"], "train_samples": 6000, "epochs": 20}


def _train(reference: dict, seed: int, alpha: float, beta: float):
    config = trial_config_from_dict({**reference, "proximity": alpha, "transport": beta,
                                     "seed": seed})
    trainer = Trainer(config)
    for _ in range(config.run.epochs):
        trainer.run_epoch()
    return trainer


def _papers_effect(tmp_path, reference: dict) -> dict[str, list[dict]]:
    """Per setting (costs: alpha 1, beta 10; none: 0, 0), seeds 1-3: segregation, accuracy,
    each task's own accuracy, and the greedy and task-free positions splits' scores."""
    results = {}
    for label, alpha, beta in (("costs", 1.0, 10.0), ("none", 0.0, 0.0)):
        rows = []
        for seed in (1, 2, 3):
            trainer = _train(reference, seed, alpha, beta)
            path = tmp_path / f"{label}{seed}.pt"
            best = trainer.best_model()
            save_checkpoint(path, best, trainer.config, trainer.epoch, trainer.best_metrics)
            context = open_checkpoint(path)
            greedy = score(context, split(context, "greedy"))
            positions = score(context, split(context, "positions"))
            measures = trainer.task_measures(best)
            rows.append({"segregation": measures["segregation"],
                         "selectivity": measures["selectivity"],
                         "modularity": measures["modularity"],
                         "positions_split": measures["positions_split"],
                         "accuracy": trainer.best_accuracy,
                         "own": [float(trainer.best_metrics[f"val_accuracy_task{t}"])
                                 for t in range(2)],
                         "greedy": greedy, "positions": positions})
        results[label] = rows
    print(json.dumps({k: [{m: round(r[m], 3) for m in MEASURED} for r in v]
                      for k, v in results.items()}))
    return results


MEASURED = ("accuracy", "positions_split", "selectivity", "modularity", "segregation")


def _means(results: dict[str, list[dict]], key: str) -> dict[str, float]:
    return {k: float(np.mean([r[key] for r in v])) for k, v in results.items()}


def _function_measures_rise(results: dict[str, list[dict]], split_rise: float) -> None:
    """The paper's effect in the measures a trial logs: the costs raise selectivity (each
    neuron serves one task), Barber's modularity and the positions split (what a trial logs
    equals the analysis's positions score)."""
    selectivity, modularity = _means(results, "selectivity"), _means(results, "modularity")
    split = _means(results, "positions_split")
    assert selectivity["costs"] >= selectivity["none"] + 0.2, selectivity
    assert modularity["costs"] >= modularity["none"] + 0.1, modularity
    assert split["costs"] >= split["none"] + split_rise, split
    for rows in results.values():
        for row in rows:
            assert row["positions_split"] == pytest.approx(
                row["positions"].diagonal - row["positions"].off_diagonal)


def _positions_gap(results: dict[str, list[dict]]) -> dict[str, float]:
    """Mean over seeds of the task-free positions split's diagonal - off-diagonal."""
    return {k: float(np.mean([r["positions"].diagonal - r["positions"].off_diagonal
                              for r in v])) for k, v in results.items()}


@pytest.mark.slow
def test_the_papers_effect_on_digits(tmp_path):
    """SPEC section 4 reference setting, 3 seeds: costs make positions predict tasks."""
    results = _papers_effect(tmp_path, REFERENCE)
    seg = {k: np.mean([r["segregation"] for r in v]) for k, v in results.items()}
    assert seg["costs"] >= seg["none"] + 0.2, seg
    for row in results["costs"]:
        assert row["accuracy"] >= 0.95
        matrix = row["greedy"].matrix
        for t in range(2):  # each subnetwork keeps >= 90% of its own task's accuracy ...
            assert matrix[t, t] >= 0.9 * row["own"][t]
        assert row["greedy"].off_diagonal <= 0.5  # ... and the other task's drops clearly
    gap = _positions_gap(results)
    print(json.dumps({"positions_gap": gap}))
    assert gap["costs"] >= 0.3 and gap["costs"] >= gap["none"] + 0.2, gap
    _function_measures_rise(results, split_rise=0.2)


@pytest.mark.slow
@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed (make test "
                           "installs it as root)")
def test_the_papers_effect_on_real_fashion_mnist(tmp_path):
    """The same two settings on real Fashion-MNIST (a seeded 6,000-image subset, 20 epochs).
    Measured (seeds 1-3): segregation 0.84-0.94 with the costs vs 0.47-0.50 without, accuracy
    0.83-0.90 vs 0.89-0.92; selectivity, modularity and the positions split as printed. The
    positions split is noisy over 3 seeds (seed SD ~0.2 in docs/reference.md), so it is only
    asked to rise by 0.05 here; `make paper` tests it over 10 seeds."""
    results = _papers_effect(tmp_path, FASHION)
    seg = {k: np.mean([r["segregation"] for r in v]) for k, v in results.items()}
    accuracy = {k: np.mean([r["accuracy"] for r in v]) for k, v in results.items()}
    assert seg["costs"] >= seg["none"] + 0.3, seg
    assert accuracy["costs"] >= accuracy["none"] - 0.06, accuracy  # the costs cost little
    for row in results["costs"]:
        assert row["accuracy"] >= 0.8  # chance: 0.2
        for t in range(2):  # each subnetwork keeps >= 90% of its own task's accuracy ...
            assert row["greedy"].matrix[t, t] >= 0.9 * row["own"][t]
        assert row["greedy"].off_diagonal <= 0.3  # ... and the other task's drops to ~chance
    gap = _positions_gap(results)
    assert gap["costs"] >= 0.3 and gap["costs"] >= gap["none"] + 0.05, gap
    _function_measures_rise(results, split_rise=0.05)


@pytest.mark.parametrize("seed", range(4))
def test_segregation_equals_scikit_learns_cross_validated_knn(seed):
    """segregation.layer_segregation (numpy) vs sklearn's pipeline it replaces, on random
    layers of 4-160 neurons and 2-4 tasks, part separated in space: the same folds and the
    same score."""
    from spatialsearch.segregation import layer_segregation

    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(50):
        n, num_tasks = int(rng.integers(4, 160)), int(rng.integers(2, 5))
        tasks = rng.integers(0, num_tasks, n)
        positions = rng.normal(size=(n, 2)) + tasks[:, None] * rng.uniform(0, 2)
        ours = layer_segregation(positions, tasks)
        if isinstance(ours, str):
            continue
        assert ours == pytest.approx(_sklearn_segregation(positions, tasks), abs=1e-12)
        compared += 1
    assert compared >= 30


def _sklearn_segregation(positions: np.ndarray, tasks: np.ndarray) -> float:
    """The scikit-learn pipeline layer_segregation replaces: min(5, smallest task) stratified
    shuffled folds (seed 0), k-NN with k = min(3, neurons outside the largest test fold, the
    smallest task's neurons left in training), odd, balanced accuracy. Also checks that the numpy folds are scikit-learn's."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    from spatialsearch.segregation import stratified_folds

    n = len(tasks)
    folds = min(5, int(np.unique(tasks, return_counts=True)[1].min()))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    expected_folds = np.empty(n, dtype=np.int64)
    largest_fold = 0
    for fold, (_, test) in enumerate(splitter.split(positions, tasks)):
        expected_folds[test] = fold
        largest_fold = max(largest_fold, len(test))
    assert np.array_equal(stratified_folds(tasks, folds), expected_folds)
    smallest = int(np.unique(tasks, return_counts=True)[1].min())
    neighbours = min(3, n - largest_fold, smallest - -(-smallest // folds))
    neighbours = max(1, neighbours if neighbours % 2 else neighbours - 1)
    predicted = cross_val_predict(KNeighborsClassifier(neighbours), positions, tasks,
                                  cv=splitter)
    return balanced_accuracy_score(tasks, predicted)


@pytest.mark.parametrize("tasks", [[0, 0, 1, 1], [0, 1, 0, 1, 1], [0, 0, 0, 1, 1, 1],
                                   [1, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 2, 2],
                                   [2, 0, 1, 2, 0, 1, 2]],
                         ids=["2+2", "2+3", "3+3", "2+5", "2+2+2", "2+2+3"])
def test_tiny_layers_are_scored_from_two_neurons_per_task(tasks):
    """The smallest layers that can be cross-validated (2 neurons in the smallest task:
    2 folds, and k-NN with fewer than 3 neighbours when few neurons are left to vote)
    score as scikit-learn does; one neuron fewer, and the layer is skipped with the
    reason."""
    from spatialsearch.segregation import layer_segregation

    tasks = np.array(tasks)
    positions = np.random.default_rng(len(tasks)).normal(size=(len(tasks), 2)) + tasks[:, None]
    assert layer_segregation(positions, tasks) == pytest.approx(
        _sklearn_segregation(positions, tasks), abs=1e-12)
    lonely = tasks.copy()
    lonely[np.flatnonzero(tasks == 0)[1:]] = 1  # task 0 keeps one neuron
    assert layer_segregation(positions, lonely) == (
        "smallest task group has 1 neuron(s); cross-validation needs 2")


def test_pareto_front_keeps_exactly_the_undominated_points():
    from analysis.figures import pareto_front

    x = np.array([0.9, 0.99, 0.5, 0.95, 0.99, 0.3])
    y = np.array([0.8, 0.5, 0.9, 0.7, 0.4, 0.2])
    assert pareto_front(x, y).tolist() == [2, 0, 3, 1]  # sorted by x; 4 and 5 dominated


def test_analyze_command_says_why_a_layer_has_no_segregation(tmp_path, capsys):
    from spatialsearch.cli import main

    path = _checkpoint(tmp_path, layers=[12, 1])  # one neuron: no task split to score
    assert main(["analyze", str(path), "--quiet", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    segregation = json.loads((tmp_path / "out" / "analysis.json").read_text())["segregation"]
    # layer 1's one neuron feeds one task's head more; all of layer 0 then feeds only it
    assert segregation["at_chance"] == {"0": "all 12 assigned neurons belong to one task",
                                        "1": "all 1 assigned neurons belong to one task"}
    assert segregation["per_layer"] == {"0": 0.5, "1": 0.5}  # at chance, 1/T, in the mean
    assert segregation["mean"] == pytest.approx(np.mean(list(segregation["per_layer"].values())))
    for layer, why in segregation["at_chance"].items():
        assert f"  layer {layer} counted at chance: {why}\n" in out
