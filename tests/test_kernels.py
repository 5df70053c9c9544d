"""The numba kernels at their edges, against known answers and the float64 references of
tests/reference.py: rows split over chunks and threads, value-only calls, layers of 0, 1 and
2 neurons, coefficients of exactly 1, and both ways a network's costs run (one
kernels_network call, or the per-layer parallel kernels)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numba
import numpy as np
import pytest
import torch

from spatialsearch import cpu_costs, kernels
from tests import reference

EPS = cpu_costs.EPS


def _transport_case(seed: int = 0, n_out: int = 5, n_in: int = 4, dim: int = 2,
                    kernel: int = 1):
    """weight (n_out, n_in, kernel), pos_out (dim, n_out), pos_in (dim, n_in): the kernels'
    layout."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_out, n_in, kernel)), rng.normal(size=(dim, n_out)),
            rng.normal(size=(dim, n_in)))


def _reference_transport(weight, pos_out, pos_in, l2: bool):
    """T and (dT/dW, dT/dpos_out, dT/dpos_in) in the kernels' layout, by autograd."""
    w = torch.tensor(weight, requires_grad=True)  # f summed over the last axis
    out = torch.tensor(pos_out.T, requires_grad=True)
    inp = torch.tensor(pos_in.T, requires_grad=True)
    value = reference.transport(w, out, inp, "l2" if l2 else "l1")
    grads = torch.autograd.grad(value, (w, out, inp))
    return value.item(), grads[0].numpy(), grads[1].numpy().T, grads[2].numpy().T


@pytest.mark.parametrize("chunks", [1, 3, 7])
@pytest.mark.parametrize("kernel", [1, 2])
@pytest.mark.parametrize("l2", [True, False])
def test_transport_rows_split_over_chunks_give_the_reference(chunks, kernel, l2):
    """transport_fused deals rows i = c, c + chunks, ... to chunk c and keeps one dT/dpos_in
    accumulator per chunk; their sum is the gradient (7 chunks: two chunks have no row).
    kernel: values per weight (1 linear, kh * kw convolution), each its own loop."""
    weight, pos_out, pos_in = _transport_case(kernel=kernel)
    want = _reference_transport(weight, pos_out, pos_in, l2)
    coef = 2.0
    grad_weight = np.full_like(weight, np.nan)
    grad_out = np.ones_like(pos_out)  # added to
    parts = np.zeros((chunks, *pos_in.shape))
    value = kernels.transport_fused(weight, pos_out, pos_in, l2, EPS, coef, kernels.WRITE,
                                    grad_weight, grad_out, parts)
    assert value == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(grad_weight, coef * want[1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad_out, 1 + coef * want[2], rtol=1e-10)
    np.testing.assert_allclose(parts.sum(0), coef * want[3], rtol=1e-10, atol=1e-14)


def test_transport_layer_adds_the_same_gradient_on_any_thread_count():
    """transport_layer keeps one accumulator per numba thread and adds their sum to grad_in.
    Checked on 1 thread and on NUMBA_NUM_THREADS (2 on a 2-core machine)."""
    weight, pos_out, pos_in = _transport_case(seed=1, n_out=6, n_in=3)
    want = _reference_transport(weight, pos_out, pos_in, False)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            grad_weight = np.empty_like(weight)
            grad_out, grad_in = np.ones_like(pos_out), np.ones_like(pos_in)
            value = kernels.transport_layer(weight, pos_out, pos_in, False, EPS, 3.0,
                                            kernels.WRITE, grad_weight, grad_out, grad_in)
            assert value == pytest.approx(want[0], rel=1e-12), threads
            np.testing.assert_allclose(grad_weight, 3.0 * want[1], rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(grad_out, 1 + 3.0 * want[2], rtol=1e-10)
            np.testing.assert_allclose(grad_in, 1 + 3.0 * want[3], rtol=1e-10)
    finally:
        numba.set_num_threads(before)


def test_value_only_kernels_give_the_cost_and_touch_no_gradient_array():
    weight, pos_out, pos_in = _transport_case(seed=2)
    arrays = [np.full_like(weight, np.nan), np.full_like(pos_out, np.nan),
              np.full((2, *pos_in.shape), np.nan)]
    value = kernels.transport_fused(weight, pos_out, pos_in, True, EPS, 5.0,
                                    kernels.VALUE_ONLY, *arrays)
    assert value == pytest.approx(_reference_transport(weight, pos_out, pos_in, True)[0],
                                  rel=1e-12)
    assert all(np.isnan(a).all() for a in arrays)
    value = kernels.transport_layer(weight, pos_out, pos_in, True, EPS, 5.0,
                                    kernels.VALUE_ONLY, *arrays[:2], arrays[2][0])
    assert value == pytest.approx(_reference_transport(weight, pos_out, pos_in, True)[0],
                                  rel=1e-12)
    assert all(np.isnan(a).all() for a in arrays)
    grad = np.full_like(pos_out, np.nan)
    value = kernels.proximity_fused(pos_out, EPS, 5.0, False, grad)
    assert value == pytest.approx(reference.proximity(torch.tensor(pos_out.T)).item(),
                                  rel=1e-12)
    assert np.isnan(grad).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_proximity_kernel_of_two_neurons_five_apart(dim):
    """p0 = 0, p1 = (3, 4[, 0]): D = sqrt(25 + eps), P = exp(-D) (both ordered pairs), and
    dP/dp0 = -exp(-D) (p0 - p1) / D = exp(-5) (0.6, 0.8[, 0]) = -dP/dp1, added to grad.
    Rows of 3-D positions take the general loop, 2-D ones the register loop."""
    positions = np.zeros((dim, 2))
    positions[:2, 1] = (3.0, 4.0)
    grad = np.ones_like(positions)
    value = kernels.proximity_fused(positions, EPS, 1.0, True, grad)
    distance = math.sqrt(25 + EPS)
    assert value == pytest.approx(math.exp(-distance), rel=1e-12)
    expected = np.zeros(dim)
    expected[:2] = math.exp(-distance) * np.array([3.0, 4.0]) / distance
    np.testing.assert_allclose(grad[:, 0], 1 + expected, rtol=1e-12)
    np.testing.assert_allclose(grad[:, 1], 1 - expected, rtol=1e-12)


@pytest.mark.parametrize("n", [0, 1])
def test_proximity_kernel_of_fewer_than_two_neurons_is_zero(n):
    grad = np.full((2, n), 7.0)
    assert kernels.proximity_fused(np.zeros((2, n)), EPS, 1.0, True, grad) == 0.0
    assert (grad == 7.0).all()


def _reference_network(weights, positions, where, l2: bool):
    """(P, T) of tests/reference.py for these parameter lists."""
    layers = [SimpleNamespace(weight=w, positions=p) for w, p in zip(weights, positions)]
    return reference.network_costs(layers, where, "l2" if l2 else "l1")


def _network(seed: int = 4, sizes: tuple[int, ...] = (3, 1, 2, 4), inputs: int = 5):
    """float64 weights (n_k, n_{k-1}; layer 0 from `inputs` pixels) and positions (n_k, 2)
    that require gradients."""
    torch.manual_seed(seed)
    positions = [torch.randn(n, 2, dtype=torch.float64, requires_grad=True) for n in sizes]
    weights = [torch.randn(n, m, dtype=torch.float64, requires_grad=True)
               for n, m in zip(sizes, (inputs, *sizes[:-1]))]
    return weights, positions


@pytest.mark.parametrize("path", ["network", "layers"])
@pytest.mark.parametrize("where", [[0, 1, 2, 3], [2], [0]], ids=["all", "2", "0"])
@pytest.mark.parametrize("with_transport", [True, False])
@pytest.mark.parametrize("l2", [True, False])
def test_network_costs_with_layers_of_one_and_two_neurons(path, where, with_transport, l2,
                                                         monkeypatch):
    """Layers of 3, 1, 2 and 4 neurons: the 1-neuron layer's proximity is 0 (and counts in
    the mean), the 2-neuron layer's is exp(-D), later layers are still reached; where = [2]
    reads layer 1's positions without costing it; where = [0] has no transport (T = 0).
    alpha = len(where) and beta = the transported count make each per-layer coefficient
    exactly 1; beta = 0 leaves proximity alone to move the positions."""
    if path == "layers":
        monkeypatch.setattr(kernels, "PARALLEL_FROM", 0)
    weights, positions = _network()
    transported = [k for k in where if k >= 1]
    alpha, beta = float(len(where)), float(len(transported)) if with_transport else 0.0
    (prox, trans), weight_grads, position_grads = cpu_costs.network_costs(
        weights, positions, where, l2, alpha, beta, kernels.WRITE)
    want_prox, want_trans = _reference_network(weights, positions, where, l2)
    assert prox == pytest.approx(want_prox.item(), rel=1e-12)
    assert trans == pytest.approx(want_trans.item(), rel=1e-12)
    penalty = alpha * want_prox + beta * want_trans
    want = torch.autograd.grad(penalty, [*weights, *positions], allow_unused=True)
    for got, expected in zip([*weight_grads, *position_grads], want):
        if expected is None or not expected.any():  # nothing moves it
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-14)
    assert weight_grads[0] is None  # layer 0 has no transport


def test_network_costs_of_no_layer_are_zero():
    weights, positions = _network()
    (prox, trans), weight_grads, position_grads = cpu_costs.network_costs(
        weights, positions, [], True, 1.0, 1.0, kernels.WRITE)
    assert (prox, trans) == (0.0, 0.0)
    assert weight_grads == [None] * 4 and position_grads == [None] * 4


def test_a_kept_workspace_is_reused_until_a_parameter_holds_its_gradient():
    """Unchanged parameters: the same gradient tensors step after step (no rebuild). Once a
    parameter holds one of them as .grad, the next step gets new ones; other parameters get
    their own costs."""
    weights, positions = _network()
    kept = cpu_costs.CostWorkspace()

    def step():
        return cpu_costs.network_costs(weights, positions, [0, 1, 2, 3], True, 1.0, 1.0,
                                       kernels.WRITE, kept)[1]

    first, second = step(), step()
    assert all(a is b for a, b in zip(first[1:], second[1:]))
    weights[3].grad = second[3]
    third = step()
    assert third[3] is not second[3]
    torch.testing.assert_close(third[3], second[3])
    other_weights, other_positions = _network(seed=5)  # new parameters: a rebuild
    (prox, trans), *_ = cpu_costs.network_costs(other_weights, other_positions, [0, 1, 2, 3],
                                                True, 1.0, 1.0, kernels.WRITE, kept)
    want_prox, want_trans = _reference_network(other_weights, other_positions, [0, 1, 2, 3],
                                               True)
    assert (prox, trans) == pytest.approx((want_prox.item(), want_trans.item()), rel=1e-12)


@pytest.mark.parametrize("sizes,inputs,parallel", [
    ((4,), 1, True),     # 4 x 4 = 16 neuron pairs
    ((3,), 1, False),    # 9 pairs
    ((3, 3), 1, False),  # 3 x 3 = 9 weights, 9 pairs
    ((1, 16), 1, True),  # 16 x 1 weights
    ((1, 3), 1, False),
], ids=["pairs_16", "pairs_9", "weights_9", "weights_16", "weights_3"])
def test_the_per_layer_kernels_take_over_from_parallel_from_work(sizes, inputs, parallel,
                                                                   monkeypatch):
    """A layer's work is its neuron pairs n^2 or its weights n_out x n_in x K; from
    PARALLEL_FROM (here 16) in any costed layer, the per-layer parallel kernels run."""
    monkeypatch.setattr(kernels, "PARALLEL_FROM", 16)
    weights, positions = _network(sizes=sizes, inputs=inputs)
    where = [len(sizes) - 1] if len(sizes) > 1 else [0]
    space = cpu_costs.CostWorkspace()
    space.prepare(weights, positions, where)
    assert space.parallel is parallel
