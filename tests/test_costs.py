"""Costs against the float64 loop references, in both backends, values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from spatialsearch import costs
from spatialsearch.config import trial_config_from_dict
from spatialsearch.evaluation import task_loss
from spatialsearch.layers import SpatialConv2d, SpatialLinear
from spatialsearch.models import build_model
from spatialsearch.train import Trainer
from tests import reference

# float32 tolerance: sums of ~1e3 terms in float32 and the polynomial exp (rel. error 1e-5).
F32 = dict(rtol=2e-4, atol=1e-6)
F64 = dict(rtol=1e-9, atol=1e-12)

SHAPES = [(1, 1), (2, 3), (7, 5), (16, 9), (33, 17)]


def _backend(name: str):
    """The two implementations: numba kernels (CPU) and torch ops (CUDA path, run on CPU)."""
    if name == "fused":
        return costs._FusedTransport.apply, costs._FusedProximity.apply
    return costs._TorchTransport.apply, costs._TorchProximity.apply


def _grads(value: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(value, inputs, retain_graph=True)


@pytest.mark.parametrize("backend", ["fused", "torch"])
@pytest.mark.parametrize("norm", ["l1", "l2"])
@pytest.mark.parametrize("kernel", [None, 1, 3], ids=["linear", "conv1", "conv3"])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("n_out,n_in", SHAPES[1:], ids=[f"{a}x{b}" for a, b in SHAPES[1:]])
def test_transport_matches_reference(backend, norm, kernel, dim, n_out, n_in):
    gen = torch.Generator().manual_seed(n_out * 100 + n_in + dim)
    shape = (n_out, n_in) if kernel is None else (n_out, n_in, kernel, kernel)
    weight = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    pos_out = torch.randn(n_out, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    pos_in = torch.randn(n_in, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    apply, _ = _backend(backend)
    expected = reference.transport(weight, pos_out, pos_in, norm)
    got = apply(weight, pos_out, pos_in, norm == "l2")
    assert_close(got, expected, **F64)
    for g, e in zip(_grads(got, weight, pos_out, pos_in),
                    _grads(expected, weight, pos_out, pos_in)):
        assert_close(g, e, **F64)
    # float32: same inputs, stated tolerance
    w32, o32, i32 = (t.detach().float().requires_grad_() for t in (weight, pos_out, pos_in))
    got32 = apply(w32, o32, i32, norm == "l2")
    assert got32.dtype == torch.float32
    assert_close(got32.double(), expected.detach(), **F32)
    for g, e in zip(_grads(got32, w32, o32, i32), _grads(expected, weight, pos_out, pos_in)):
        assert_close(g.double(), e, rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["fused", "torch"])
@pytest.mark.parametrize("wanted", [(0,), (1,), (2,), (0, 1), (1, 2)],
                         ids=["weight", "pos_out", "pos_in", "weight+pos_out", "positions"])
def test_transport_gives_each_input_that_asks_its_gradient(backend, wanted):
    """Frozen positions (a fixed layout) or a frozen weight: each input that requires a
    gradient gets the reference's, the others none."""
    gen = torch.Generator().manual_seed(9)
    inputs = [torch.randn(4, 3, 2, 2, generator=gen, dtype=torch.float64),
              torch.randn(4, 2, generator=gen, dtype=torch.float64),
              torch.randn(3, 2, generator=gen, dtype=torch.float64)]
    for k in wanted:
        inputs[k].requires_grad_()
    apply, _ = _backend(backend)
    got = torch.autograd.grad(apply(*inputs, True), [inputs[k] for k in wanted])
    expected = torch.autograd.grad(reference.transport(*inputs, "l2"),
                                   [inputs[k] for k in wanted])
    for g, e in zip(got, expected):
        assert_close(g, e, **F64)


@pytest.mark.parametrize("backend", ["fused", "torch"])
@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("n", [2, 3, 10, 31, 64])
def test_proximity_matches_reference(backend, dim, n):
    gen = torch.Generator().manual_seed(n * 10 + dim)
    positions = torch.randn(n, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    _, apply = _backend(backend)
    expected = reference.proximity(positions)
    got = apply(positions)
    assert_close(got, expected, **F64)
    assert_close(_grads(got, positions)[0], _grads(expected, positions)[0], **F64)
    p32 = positions.detach().float().requires_grad_()
    got32 = apply(p32)
    assert_close(got32.double(), expected.detach(), **F32)
    # the torch path forms distances as |a|^2 + |b|^2 - 2ab: float32 cancellation ~1e-6
    assert_close(_grads(got32, p32)[0].double(), _grads(expected, positions)[0],
                 rtol=2e-4, atol=1e-5)


def test_fast_exp_is_accurate_over_its_range():
    """The float32 polynomial exp used by the fused proximity kernel: rel. error < 1e-5."""
    import numpy as np

    from spatialsearch.kernels import EXP_CLAMP, _exp_neg_f32

    for d in np.concatenate([np.linspace(0, EXP_CLAMP, 2001), [1e-4, 0.5, 31.99]]):
        exact = np.exp(-float(np.float32(d)))  # the float32 input is what the kernel sees
        assert abs(float(_exp_neg_f32(np.float32(d))) - exact) <= 1e-5 * exact + 1e-30
    # beyond the clamp, exp(-d) is taken as exp(-32) = 1.3e-14
    for d in (EXP_CLAMP + 1, 100.0, 1e6):
        got = float(_exp_neg_f32(np.float32(d)))
        assert got == pytest.approx(np.exp(-EXP_CLAMP), rel=1e-5)


def test_proximity_of_two_neurons_in_one_dimension():
    """costs.proximity of p = (0, 5) on a line: exp(-sqrt(25 + eps)), on both paths."""
    positions = torch.tensor([[0.0], [5.0]], dtype=torch.float64)
    expected = math.exp(-math.sqrt(25 + reference.EPS))
    assert costs.proximity(positions).item() == pytest.approx(expected, rel=1e-12)
    assert costs._TorchProximity.apply(positions).item() == pytest.approx(expected, rel=1e-9)


def test_half_precision_takes_the_torch_path():
    """The kernels take float32 and float64; float16 tensors (numba has no half type) run as
    torch ops and match the float64 reference to half precision."""
    gen = torch.Generator().manual_seed(1)
    weight, pos_out, pos_in = (torch.randn(*shape, generator=gen).half()
                               for shape in ((4, 3), (4, 2), (3, 2)))
    want = reference.transport(weight.double(), pos_out.double(), pos_in.double(), "l2")
    assert costs.transport(weight, pos_out, pos_in, "l2").item() == pytest.approx(
        want.item(), rel=2e-3)
    assert costs.proximity(pos_out).item() == pytest.approx(
        reference.proximity(pos_out.double()).item(), rel=2e-3)


def test_an_empty_selection_costs_nothing():
    """spatial_costs with no layer selected: (0, 0), not an error."""
    config = trial_config_from_dict({"layers": [6, 5], "labels": 5})
    layers = build_model(config).spatial_layers
    assert [v.item() for v in costs.spatial_costs(layers, [], "l1")] == [0.0, 0.0]


def test_coincident_positions_give_finite_costs_and_gradients():
    positions = torch.zeros(4, 2, requires_grad=True)
    weight = torch.randn(4, 4, requires_grad=True)
    for value in (costs.proximity(positions), costs.transport(weight, positions, positions, "l2")):
        value.backward()
        assert torch.isfinite(value)
    assert torch.isfinite(positions.grad).all() and torch.isfinite(weight.grad).all()


def test_proximity_of_one_neuron_is_zero():
    positions = torch.randn(1, 2, requires_grad=True)
    assert costs.proximity(positions).item() == 0.0


@pytest.mark.parametrize("model_type", ["linear", "convolution"])
@pytest.mark.parametrize("where", ["all", [0], [1, 3], [3]])
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_network_costs_match_reference_and_reach_every_parameter(model_type, where, norm):
    config = trial_config_from_dict({"type": model_type, "layers": [6, 5, 4], "where": where,
                                     "norm": norm, "labels": 5})
    torch.manual_seed(3)
    model = build_model(config).double()
    layers = model.spatial_layers
    prox, trans = costs.spatial_costs(layers, config.cost_layers, norm)
    ref_prox, ref_trans = reference.network_costs(layers, list(config.cost_layers), norm)
    assert_close(prox, ref_prox, **F64)
    assert_close(trans, ref_trans, **F64)
    params = [p for layer in layers for p in (layer.weight, layer.positions)]
    for value, ref in ((prox, ref_prox), (trans, ref_trans)):
        if not ref.requires_grad:  # nothing selected: ours must be 0 and move nothing
            assert value.item() == 0.0
            continue
        got = torch.autograd.grad(value, params, allow_unused=True, retain_graph=True)
        want = torch.autograd.grad(ref, params, allow_unused=True, retain_graph=True)
        for g, w in zip(got, want):
            if w is None:
                assert g is None or torch.count_nonzero(g) == 0
            else:
                assert_close(g, w, **F64)
    # every position of a layer in `where` receives a non-zero gradient
    total = prox + trans
    total.backward()
    for k in config.cost_layers:
        assert torch.count_nonzero(layers[k].positions.grad) > 0


def _use_path(path: str, monkeypatch) -> None:
    """network: one kernels_network.network_costs call (small layers); layers: the per-layer
    parallel kernels (large layers; forced here); torch: the CUDA branch, run on the CPU."""
    from spatialsearch import kernels

    if path == "layers":
        monkeypatch.setattr(kernels, "PARALLEL_FROM", 0)
    if path == "torch":
        monkeypatch.setattr(costs, "_fused", lambda *tensors: False)


@pytest.mark.parametrize("path", ["network", "layers", "torch"])
@pytest.mark.parametrize("model_type", ["linear", "convolution"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 10.0), (1.0, 0.0), (0.0, 1.0), (0.5, 3.0),
                                        (0.0, 0.0)])
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_penalised_backward_gives_the_gradients_of_loss_plus_penalty(
        path, model_type, alpha, beta, norm, monkeypatch):
    """The trainer's step: the kernels write the penalty's gradients, fit.backward() adds."""
    config = trial_config_from_dict({"type": model_type, "layers": [6, 5], "labels": 5,
                                     "norm": norm})
    torch.manual_seed(11)
    model = build_model(config).double()
    layers, where = model.spatial_layers, list(config.cost_layers)
    x = torch.rand(4, *config.data.input_shape, dtype=torch.float64)
    y = torch.randint(0, 5, (4, config.data.num_tasks))
    _use_path(path, monkeypatch)
    penalty, prox, trans = costs.penalised_backward(task_loss(model(x), y), layers, where,
                                                    norm, alpha, beta, costs.CostWorkspace())
    got = {name: p.grad for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    ref_prox, ref_trans = reference.network_costs(layers, where, norm)
    (task_loss(model(x), y) + alpha * ref_prox + beta * ref_trans).backward()
    assert float(prox) == pytest.approx(float(ref_prox.detach()), rel=1e-12)
    assert float(trans) == pytest.approx(float(ref_trans.detach()), rel=1e-12)
    ref_penalty = (alpha * ref_prox + beta * ref_trans).detach()
    assert float(penalty) == pytest.approx(float(ref_penalty), rel=1e-12)
    for name, p in model.named_parameters():
        if got[name] is None:  # only a position no cost moves may have no gradient
            assert name.endswith("positions") and torch.count_nonzero(p.grad) == 0, name
        else:
            assert_close(got[name], p.grad, **F64)
    moved = [name for name, g in got.items() if name.endswith("positions") and g is not None
             and torch.count_nonzero(g) > 0]
    assert bool(moved) == (alpha > 0 or beta > 0)


@pytest.mark.parametrize("path", ["network", "layers"])
@pytest.mark.parametrize("dim", [2, 3])
def test_a_kept_workspace_gives_each_step_its_own_float32_gradients(path, dim, monkeypatch):
    """The Trainer keeps one CostWorkspace: after the parameters change, a step must give the
    new gradients (not stale views), equal to a fresh workspace's, and close to float64."""
    config = trial_config_from_dict({"layers": [12, 9], "labels": 5, "dim": dim})
    torch.manual_seed(5)
    model = build_model(config)
    layers, where = model.spatial_layers, list(config.cost_layers)
    x, y = torch.rand(8, *config.data.input_shape), torch.randint(0, 5, (8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    _use_path(path, monkeypatch)
    kept = costs.CostWorkspace()
    for step in range(3):
        optimizer.zero_grad(set_to_none=True)
        costs.penalised_backward(task_loss(model(x), y), layers, where, "l2", 1.0, 10.0, kept)
        got = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        costs.penalised_backward(task_loss(model(x), y), layers, where, "l2", 1.0, 10.0)
        fresh = {name: p.grad for name, p in model.named_parameters()}
        twin = build_model(config).double()
        twin.load_state_dict(model.state_dict())
        ref_prox, ref_trans = reference.network_costs(twin.spatial_layers, where, "l2")
        (task_loss(twin(x.double()), y) + ref_prox + 10.0 * ref_trans).backward()
        for name, p in twin.named_parameters():
            assert torch.equal(got[name], fresh[name]), (step, name)
            assert_close(got[name], p.grad.float(), rtol=1e-3, atol=1e-6)
        optimizer.zero_grad(set_to_none=True)
        costs.penalised_backward(task_loss(model(x), y), layers, where, "l2", 1.0, 10.0, kept)
        optimizer.step()


@pytest.mark.parametrize("path", ["network", "layers"])
def test_the_cpu_step_hands_the_workspaces_tensors_to_the_parameters(path, monkeypatch):
    """On the CPU the kernels' gradient tensors become the parameters' .grad (no copy), and
    the task gradient is added into them."""
    config = trial_config_from_dict({"layers": [6, 5], "labels": 5})
    model = build_model(config).double()
    layers, where = model.spatial_layers, list(config.cost_layers)
    x = torch.rand(4, *config.data.input_shape, dtype=torch.float64)
    _use_path(path, monkeypatch)
    kept = costs.CostWorkspace()
    costs.penalised_backward(task_loss(model(x), torch.randint(0, 5, (4, 2))), layers, where,
                             "l2", 1.0, 1.0, kept)
    for k, layer in enumerate(layers):
        assert layer.positions.grad.data_ptr() == kept.position_grads[k].data_ptr()
        if k >= 1:
            assert layer.weight.grad.data_ptr() == kept.weight_grads[k].data_ptr()


@pytest.mark.parametrize("path", ["network", "layers"])
def test_gradients_accumulate_without_zero_grad(path, monkeypatch):
    """Two backward passes without zero_grad give twice the gradient, even though the kept
    workspace's gradient tensors are the parameters' .grad after the first."""
    config = trial_config_from_dict({"layers": [6, 5], "labels": 5})
    torch.manual_seed(3)
    model = build_model(config).double()
    layers, where = model.spatial_layers, list(config.cost_layers)
    x = torch.rand(4, *config.data.input_shape, dtype=torch.float64)
    y = torch.randint(0, 5, (4, 2))
    _use_path(path, monkeypatch)
    kept = costs.CostWorkspace()
    costs.penalised_backward(task_loss(model(x), y), layers, where, "l1", 1.0, 2.0, kept)
    once = {name: p.grad.clone() for name, p in model.named_parameters()}
    costs.penalised_backward(task_loss(model(x), y), layers, where, "l1", 1.0, 2.0, kept)
    for name, p in model.named_parameters():
        assert_close(p.grad, 2 * once[name], **F64)


def test_zero_coefficients_give_exactly_the_task_loss():
    """alpha = beta = 0: the loss the trainer optimises is the task loss, bit for bit."""
    config = trial_config_from_dict({"layers": [8], "epochs": 1, "batch": 16,
                                     "proximity": 0, "transport": 0})
    trainer = Trainer(config)
    batch = next(trainer.train_batches.epoch())
    logits = trainer.model(batch.inputs)
    expected = task_loss(logits, batch.targets)
    prox, trans = costs.spatial_costs(trainer.model.spatial_layers, config.cost_layers, "l2")
    total = expected + config.cost.proximity * prox + config.cost.transport * trans
    assert prox.item() > 0 and trans.item() > 0
    assert torch.equal(total, expected)
    # and one step with zero coefficients equals one step of the bare task loss
    twin = Trainer(config)
    twin.model.load_state_dict(trainer.model.state_dict())
    trainer.optimizer.zero_grad()
    total.backward()
    twin.optimizer.zero_grad()
    task_loss(twin.model(batch.inputs), batch.targets).backward()
    for (name, a), b in zip(trainer.model.named_parameters(), twin.model.parameters()):
        if name.endswith("positions"):
            continue
        assert torch.equal(a.grad, b.grad), name


def test_layers_have_positions_and_round_trip_state_dict():
    linear, conv = SpatialLinear(5, 3, dim=2), SpatialConv2d(2, 4, kernel=3, dim=3)
    assert linear.positions.shape == (3, 2) and conv.positions.shape == (4, 3)
    y = conv(torch.randn(2, 2, 6, 6))
    assert y.shape == (2, 4, 6, 6)
    copy = SpatialConv2d(2, 4, kernel=3, dim=3)
    copy.load_state_dict(conv.state_dict())
    assert torch.equal(copy.positions, conv.positions)
