"""Training: per-task accuracy in every mode, determinism, checkpoints, divergence, devices."""

from __future__ import annotations

import pytest
import torch

from spatialsearch import metrics as m
from spatialsearch.checkpoint import load_checkpoint, load_model, save_checkpoint
from spatialsearch.config import trial_config_from_dict
from spatialsearch.data.modes import TaskBatches
from spatialsearch.data.sources import TaskData, TaskSet, load_task_data
from spatialsearch.errors import CheckpointError, ConfigError
from spatialsearch.evaluation import evaluate
from spatialsearch.models import build_model
from spatialsearch.train import Trainer, TrainingDiverged, build_optimizer

MODES = [("concatenate", "random"), ("mix", "random"), ("sequential", "random"),
         ("sequential", "task")]
CPU = torch.device("cpu")


def _scramble_task(data: TaskData, task: int, seed: int = 0) -> TaskData:
    """Replace one task's labels (every split) by random labels: nothing left to learn."""
    gen = torch.Generator().manual_seed(seed)

    def scramble(split: list[TaskSet]) -> list[TaskSet]:
        out = list(split)
        labels = out[task].labels
        out[task] = out[task]._replace(labels=torch.randint(0, 5, labels.shape, generator=gen))
        return out

    return TaskData(*(scramble(split) for split in data))


@pytest.mark.parametrize("mode,sampler", MODES, ids=[f"{a}-{b}" for a, b in MODES])
@pytest.mark.parametrize("scrambled", [0, 1])
def test_per_task_accuracy_shows_the_scrambled_task_at_chance(mode, sampler, scrambled):
    config = trial_config_from_dict({"input": mode, "sampler": sampler, "layers": [64],
                                     "activation": "ReLU", "epochs": 12, "lr": 0.01})
    data = _scramble_task(load_task_data(config.data, 1, CPU), scrambled)
    trainer = Trainer(config, data)
    for _ in range(config.run.epochs):
        results = trainer.run_epoch()
    learned = results[m.val_task_accuracy(1 - scrambled)]
    chance = results[m.val_task_accuracy(scrambled)]
    threshold = 0.6 if mode == "mix" else 0.85
    assert learned > threshold, results
    assert chance < 0.4, results  # 5 labels: chance is 0.2
    assert results[m.VAL_ACCURACY] == pytest.approx((learned + chance) / 2)


def test_same_seed_same_run_other_seed_other_run():
    def run(seed: int) -> list[float]:
        config = trial_config_from_dict({"layers": [16], "epochs": 2, "seed": seed,
                                         "proximity": 1, "transport": 10})
        trainer = Trainer(config)
        return [trainer.run_epoch()[m.TRAIN_LOSS] for _ in range(2)]

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("model_type", ["linear", "convolution"])
@pytest.mark.parametrize("mode", ["concatenate", "mix", "sequential"])
def test_checkpoint_reloads_weights_only_and_reproduces_accuracy(tmp_path, model_type, mode):
    config = trial_config_from_dict({"type": model_type, "layers": [8, 6], "epochs": 2,
                                     "input": mode, "proximity": 1, "transport": 1})
    trainer = Trainer(config)
    for _ in range(2):
        results = trainer.run_epoch()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, trainer.model, config, trainer.epoch, results)
    raw = torch.load(path, weights_only=True)  # plain tensors and values only
    assert set(raw) == {"state_dict", "config", "epoch", "metrics"}
    checkpoint = load_checkpoint(path)
    assert checkpoint.config == config and checkpoint.epoch == 2
    model = load_model(checkpoint)
    again = evaluate(model, trainer.validation_batches)
    assert again.accuracy == pytest.approx(results[m.VAL_ACCURACY], abs=1e-12)


def test_resume_from_state_dict_continues_identically():
    config = trial_config_from_dict({"layers": [12], "epochs": 4, "transport": 5})
    straight = Trainer(config)
    losses = [straight.run_epoch()[m.TRAIN_LOSS] for _ in range(4)]
    first = Trainer(config)
    for _ in range(2):
        first.run_epoch()
    state = first.state_dict()
    second = Trainer(config)
    second.load_state_dict(state)
    resumed = [second.run_epoch()[m.TRAIN_LOSS] for _ in range(2)]
    assert resumed == pytest.approx(losses[2:], rel=1e-6)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_bad_checkpoints_are_clear_errors(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="checkpoint: "):
        load_checkpoint(path)


def test_truncated_and_foreign_checkpoints(tmp_path):
    config = trial_config_from_dict({"layers": [8]})
    trainer = Trainer(config)
    good = tmp_path / "good.pt"
    save_checkpoint(good, trainer.model, config, 1, {})
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a spatialsearch checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    other = trial_config_from_dict({"layers": [9]})
    torch.save({"state_dict": trainer.model.state_dict(), "config": other.to_flat_dict(),
                "epoch": 1, "metrics": {}}, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_model(load_checkpoint(tmp_path / "mismatch.pt"))


def test_diverging_loss_stops_with_a_reason():
    config = trial_config_from_dict({"layers": [8], "lr": 1e6, "optimizer": "SGD",
                                     "activation": "ReLU", "transport": 1e30})
    trainer = Trainer(config)
    with pytest.raises(TrainingDiverged, match="training loss is"):
        for _ in range(5):
            trainer.run_epoch()


@pytest.mark.parametrize("name", ["SGD", "AdamW", "RMSprop", "Adagrad", "NAdam"])
def test_optimizers_by_name_with_arguments_and_positions_lr(name):
    args = {"SGD": {"momentum": 0.9}, "AdamW": {"weight_decay": 0.01}}.get(name, {})
    config = trial_config_from_dict({"optimizer": name, "optimizer_args": args, "lr": 0.01,
                                     "positions_lr": 0.001, "layers": [8], "epochs": 1})
    trainer = Trainer(config)
    groups = trainer.optimizer.param_groups
    assert type(trainer.optimizer).__name__ == name
    assert [g["lr"] for g in groups] == [0.01, 0.001]
    assert all(p.shape[-1] == 2 for p in groups[1]["params"])  # positions only
    for key, value in args.items():
        assert groups[0][key] == value
    assert trainer.run_epoch()[m.VAL_ACCURACY] > 0


def test_positions_share_the_weights_group_when_their_rate_is_the_same():
    config = trial_config_from_dict({"lr": 0.01, "layers": [8], "epochs": 1})
    trainer = Trainer(config)
    (group,) = trainer.optimizer.param_groups
    assert group["lr"] == 0.01
    assert {id(p) for p in group["params"]} == {id(p) for p in trainer.model.parameters()}


def test_unknown_optimizer_argument_names_what_is_accepted():
    config = trial_config_from_dict({"optimizer": "SGD", "optimizer_args": {"mommentum": 0.9}})

    with pytest.raises(ConfigError, match=r"optimizer_args\.mommentum: SGD does not take it; "
                                          r"it takes .*momentum"):
        build_optimizer(build_model(config), config)


def test_cuda_requested_without_cuda_is_a_config_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device: 'cuda' asked for, but CUDA is not available"):
        Trainer(trial_config_from_dict({"device": "cuda"}))


def test_sequential_evaluation_scores_each_task_on_its_own_samples():
    """A model whose head answers label 0 for task 0 and 1 for task 1 is right exactly on the
    samples with those labels: the per-task split uses the targets, not positions in batch."""
    config = trial_config_from_dict({"input": "sequential", "layers": [4]})
    data = load_task_data(config.data, 1, CPU)
    trainer = Trainer(config, data)
    head = trainer.model.head
    with torch.no_grad():
        for layer in trainer.model.spatial_layers:
            layer.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, 0, 0, 0, 0, 0, 5.0, 0, 0, 0]))
    batches = TaskBatches(data.validation, "sequential", "random", 64, torch.Generator())
    result = evaluate(trainer.model, batches)
    expected = [float((task.labels == t).float().mean()) for t, task in
                enumerate(data.validation)]
    assert result.task_accuracy == pytest.approx(expected)


def test_convolution_model_starts_from_centred_filters():
    """models.init_pooled_network_: zero-mean filters, std gain / sqrt(fan_in), zero biases."""
    config = trial_config_from_dict({"type": "convolution", "layers": [64, 48],
                                     "activation": "Sigmoid"})
    torch.manual_seed(0)
    model = build_model(config)
    for layer in model.hidden:
        weight = layer.weight
        fan_in = weight[0].numel()
        assert weight.mean(dim=(1, 2, 3)).abs().max() < 1e-6
        assert float(weight.detach().std()) == pytest.approx(8.0 / fan_in**0.5, rel=0.05)
        assert torch.count_nonzero(layer.bias) == 0
    assert float(model.head.weight.detach().std()) == pytest.approx(8.0 / 48**0.5, rel=0.1)
    linear = build_model(trial_config_from_dict({"layers": [64]}))  # torch's init, untouched
    first = linear.hidden[0]
    assert float(first.weight.detach().abs().max()) <= 1 / first.in_features**0.5
