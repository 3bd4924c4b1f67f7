"""kl_div(..., dim=k): the KL of every distribution along a class axis (issue 14).

References are float64 numpy written here: the per-element table of
conftest.reference_losses summed along the axis, then reduced per
distribution. The reference framework has no ``dim``; where the two agree (a
2-D input with the classes last) it is compared too.
"""
import warnings

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

from conftest import reference_losses

SHAPE = (3, 4, 5)
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}


def distributions(rng, shape, axis, dtype=np.float64):
    """(log q, p): random distributions along ``axis``."""
    def normalised(logits):
        shifted = logits - logits.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    log_q = normalised(rng.standard_normal(shape))
    p = np.exp(normalised(rng.standard_normal(shape)))
    return log_q.astype(dtype), p.astype(dtype)


def reference(x, target, axis, reduction, select=None, log_target=False):
    per_distribution = reference_losses(x, target, log_target).sum(axis=axis)
    if select is not None:
        per_distribution = np.where(select, per_distribution, 0.0)
    if reduction == "none":
        return per_distribution
    count = per_distribution.size if select is None else np.count_nonzero(select)
    total = per_distribution.sum()
    return total if reduction == "sum" else (total / count if count else np.nan)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_every_axis_and_reduction_matches_the_reference(rng, n_threads, dim, reduction, dtype):
    x, p = distributions(rng, SHAPE, dim, dtype)
    got = kl_div(x, p, reduction=reduction, dim=dim)
    expected = reference(x, p, dim, reduction)
    assert got.dtype == dtype
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got.numpy().astype(np.float64), expected, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * 1e-3)


def test_batchmean_with_dim_divides_by_every_distribution(rng):
    # (B, S, V): without dim batchmean divides by B; with dim=-1 by B * S.
    x, p = distributions(rng, SHAPE, -1)
    per_sequence = kl_div(x, p, reduction="batchmean").item()
    per_token = kl_div(x, p, reduction="batchmean", dim=-1).item()
    assert per_token == pytest.approx(per_sequence / SHAPE[1], rel=1e-12)


@pytest.mark.parametrize("log_target", [False, True])
def test_log_target_with_dim(rng, log_target):
    x, p = distributions(rng, SHAPE, 1)
    target = np.log(p) if log_target else p
    got = kl_div(x, target, reduction="none", dim=1, log_target=log_target).numpy()
    np.testing.assert_allclose(got, reference(x, target, 1, "none", log_target=log_target),
                               rtol=1e-12)


@pytest.mark.parametrize("x_shape, t_shape, dim", [((4, 1, 5), (3, 5), -1), ((1, 5), (3, 4, 5), 2),
                                                   ((3, 4, 5), (4, 1), 1), ((3, 4, 1), (5,), 2)])
@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean"])
def test_broadcasting_inputs(rng, x_shape, t_shape, dim, reduction):
    x = np.log(rng.uniform(0.05, 1.0, x_shape))
    p = rng.uniform(0.0, 1.0, t_shape)
    got = kl_div(x, p, reduction=reduction, dim=dim).numpy()
    np.testing.assert_allclose(got, reference(x, p, dim, reduction), rtol=1e-12)


@pytest.mark.parametrize("layout", ["fortran", "transposed_view", "reversed"])
def test_layouts_give_the_same_per_distribution_values(rng, layout):
    x, p = distributions(rng, (64, 300), 0, np.float32)
    expected = kl_div(x, p, reduction="none", dim=0).numpy()
    if layout == "fortran":
        x2, p2 = np.asfortranarray(x), np.asfortranarray(p)
    elif layout == "transposed_view":
        x2, p2 = np.ascontiguousarray(x.T).T, np.ascontiguousarray(p.T).T
    else:
        x2, p2 = np.ascontiguousarray(x[::-1])[::-1], np.ascontiguousarray(p[::-1])[::-1]
    np.testing.assert_array_equal(kl_div(x2, p2, reduction="none", dim=0).numpy(), expected)


def test_two_dimensional_batchmean_matches_the_reference_framework(rng):
    torch = pytest.importorskip("torch")
    x, p = distributions(rng, (8, 11), -1)
    expected = torch.nn.functional.kl_div(torch.from_numpy(x), torch.from_numpy(p),
                                          reduction="batchmean").item()
    assert kl_div(x, p, reduction="batchmean", dim=-1).item() == pytest.approx(expected, rel=1e-12)
    assert kl_div(x, p, reduction="batchmean", dim=1).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_gradients_match_the_reference(rng, reduction, dim):
    x, p = distributions(rng, SHAPE, dim)
    x_leaf = lucid.tensor(x, requires_grad=True)
    t_leaf = lucid.tensor(p, requires_grad=True)
    loss = kl_div(x_leaf, t_leaf, reduction=reduction, dim=dim)
    upstream = rng.standard_normal(loss.shape) if reduction == "none" else np.float64(1.0)
    loss.backward(lucid.tensor(upstream) if reduction == "none" else None)
    count = {"none": 1, "sum": 1}.get(reduction, x.size // x.shape[dim])
    g = np.expand_dims(upstream, dim) / count if reduction == "none" else upstream / count
    np.testing.assert_allclose(x_leaf.grad.numpy(), np.broadcast_to(-p * g, x.shape), rtol=1e-12)
    np.testing.assert_allclose(t_leaf.grad.numpy(), (np.log(p) + 1 - x) * g, rtol=1e-12,
                               atol=1e-15)


def test_gradient_matches_central_differences(rng):
    x, p = distributions(rng, (2, 3, 4), 1)
    x_leaf = lucid.tensor(x, requires_grad=True)
    kl_div(x_leaf, p, reduction="batchmean", dim=1).backward()
    eps = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (kl_div(up, p, reduction="batchmean", dim=1).item()
                          - kl_div(down, p, reduction="batchmean", dim=1).item()) / (2 * eps)
    np.testing.assert_allclose(x_leaf.grad.numpy(), numeric, rtol=1e-6, atol=1e-9)


def test_second_derivatives_through_dim(rng):
    # d/dtarget of sum(dL/dx * w) for L = sum of KLs: dL/dx = -p, so it is -w.
    x, p = distributions(rng, SHAPE, 0)
    x_leaf = lucid.tensor(x, requires_grad=True)
    t_leaf = lucid.tensor(p, requires_grad=True)
    (grad_x,) = lucid.autograd.grad(kl_div(x_leaf, t_leaf, reduction="sum", dim=0), [x_leaf],
                                    create_graph=True)
    w = rng.standard_normal(SHAPE)
    (hvp,) = lucid.autograd.grad((grad_x * lucid.tensor(w)).sum(), [t_leaf])
    np.testing.assert_allclose(hvp.numpy(), -w, rtol=1e-12)


@pytest.mark.parametrize("bad", [1.5, "last", True, (0,)])
def test_dim_must_be_an_integer(bad):
    with pytest.raises(TypeError, match="dim must be an integer"):
        kl_div(np.zeros((2, 3)), np.ones((2, 3)), dim=bad)


@pytest.mark.parametrize("dim", [2, -3, 10])
def test_dim_out_of_range_names_it(dim):
    with pytest.raises(IndexError, match=rf"Dimension out of range \(expected to be in range of "
                                         rf"\[-2, 1\], but got {dim}\)"):
        kl_div(np.zeros((2, 3)), np.ones((2, 3)), dim=dim)


def test_dim_of_a_zero_dimensional_loss_is_refused():
    with pytest.raises(IndexError, match="dim=0 needs a loss with at least one dimension"):
        kl_div(np.float64(0.0), np.float64(1.0), dim=0)


def test_empty_distributions_and_no_distributions(rng):
    # No classes: every KL is 0; no distributions: sum 0, means NaN without warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(kl_div(np.zeros((3, 0)), np.zeros((3, 0)), reduction="none",
                                             dim=1).numpy(), np.zeros(3))
        assert kl_div(np.zeros((0, 4)), np.zeros((0, 4)), reduction="sum", dim=1).item() == 0
        assert np.isnan(kl_div(np.zeros((0, 4)), np.zeros((0, 4)), reduction="mean", dim=1).item())
