"""Every CUDA path on a real card: the costs and their gradients against the float64 CPU
reference, training (one epoch against the same seed on the CPU), and a checkpoint saved on
the card and loaded on the CPU with weights_only=True.

The device is CUDA when there is one. `benchmarks/gpu_check.py --stand-in-cpu` runs this file
with SPATIALSEARCH_TEST_DEVICE=cpu, so that its plumbing runs in CI where no GPU is; the
variable is read here, by the tests, never by the package.
"""

from __future__ import annotations

import os

import pytest
import torch

from spatialsearch import metrics as m
from spatialsearch.checkpoint import load_checkpoint, load_model, save_checkpoint
from spatialsearch.config import trial_config_from_dict
from spatialsearch.costs import spatial_costs
from spatialsearch.models import build_model
from spatialsearch.train import Trainer
from tests import reference

DEVICE = os.environ.get("SPATIALSEARCH_TEST_DEVICE") or (
    "cuda" if torch.cuda.is_available() else "")
pytestmark = pytest.mark.skipif(not DEVICE, reason="needs CUDA (the GPU check runs it with "
                                                   "SPATIALSEARCH_TEST_DEVICE=cpu on the CPU)")


@pytest.mark.parametrize("kind, norm", [("linear", "l2"), ("linear", "l1"),
                                        ("convolution", "l2")])
def test_costs_and_gradients_match_the_float64_reference(kind, norm):
    config = trial_config_from_dict({"type": kind, "layers": [7, 5], "labels": 5,
                                     "norm": norm})
    torch.manual_seed(0)
    model = build_model(config)
    reference_model = build_model(config).double()
    reference_model.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    model = model.to(DEVICE)
    where = list(range(len(model.spatial_layers)))
    prox, trans = spatial_costs(model.spatial_layers, where, norm)
    (prox + 10 * trans).backward()
    want_prox, want_trans = reference.network_costs(reference_model.spatial_layers, where, norm)
    (want_prox + 10 * want_trans).backward()
    assert prox.device.type == torch.device(DEVICE).type
    assert float(prox.detach()) == pytest.approx(float(want_prox.detach()), rel=1e-5)
    assert float(trans.detach()) == pytest.approx(float(want_trans.detach()), rel=1e-5)
    for ours, theirs in zip(model.spatial_layers, reference_model.spatial_layers):
        for name in ("weight", "positions"):  # layer 0's weight has no transport: no gradient
            got, want = getattr(ours, name).grad, getattr(theirs, name).grad
            assert (got is None) == (want is None), name
            if want is not None:
                assert got.device.type == torch.device(DEVICE).type
                torch.testing.assert_close(got.cpu().double(), want, rtol=1e-4, atol=1e-6)


def test_training_on_the_device_matches_the_cpu():
    """The same seed on the device (torch cost ops on CUDA) and on the CPU (numba kernels):
    two epochs end at the same losses and weights, within float32 and reduction-order
    noise."""
    results, weights = {}, {}
    for device in ("cpu", DEVICE):
        config = trial_config_from_dict({"layers": [16], "epochs": 2, "device": device,
                                         "proximity": 1, "transport": 1})
        trainer = Trainer(config)
        assert next(trainer.model.parameters()).device.type == torch.device(device).type
        for _ in range(2):
            results[device] = trainer.run_epoch()
        weights[device] = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    for key in (m.TRAIN_LOSS, m.PROXIMITY, m.TRANSPORT, m.VAL_LOSS):
        assert results[DEVICE][key] == pytest.approx(results["cpu"][key], rel=1e-3), key
    assert abs(results[DEVICE][m.VAL_ACCURACY] - results["cpu"][m.VAL_ACCURACY]) <= 0.02
    for name, value in weights["cpu"].items():
        torch.testing.assert_close(weights[DEVICE][name], value, rtol=1e-3, atol=1e-3)


def test_a_checkpoint_saved_on_the_device_loads_on_the_cpu(tmp_path):
    config = trial_config_from_dict({"layers": [6, 4], "device": DEVICE})
    model = build_model(config).to(DEVICE)
    save_checkpoint(tmp_path / "best.pt", model, config, 3, {m.VAL_ACCURACY: 0.5})
    raw = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in raw["state_dict"].values())
    loaded = load_model(load_checkpoint(tmp_path / "best.pt"), "cpu")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value.cpu())
    x = torch.rand(3, *config.data.input_shape)
    torch.testing.assert_close(loaded(x), model(x.to(DEVICE)).cpu(), rtol=1e-4, atol=1e-5)
