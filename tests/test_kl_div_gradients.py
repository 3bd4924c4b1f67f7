"""Gradients of kl_div: the gradient formulas of docs/api/kl_div.rst, finite differences, the reference framework."""
import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div, log_softmax

from conftest import random_distributions, reference_losses, reference_reduce

REDUCTIONS = ["none", "sum", "mean", "batchmean"]


def loss_and_grads(x, target, reduction, log_target, upstream=None):
    xt = lucid.tensor(x, requires_grad=True)
    tt = lucid.tensor(target, requires_grad=True)
    loss = kl_div(xt, tt, reduction=reduction, log_target=log_target)
    loss.backward(None if upstream is None else lucid.tensor(upstream))
    return loss, xt.grad.numpy(), tt.grad.numpy()


def central_difference(f, a, eps=1e-6):
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        plus, minus = a.copy(), a.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_gradients_match_finite_differences(rng, reduction, log_target):
    x, p = random_distributions(rng, (3, 4))
    target = np.log(p) if log_target else p
    upstream = rng.standard_normal((3, 4)) if reduction == "none" else None
    weight = upstream if upstream is not None else 1.0

    def scalar(x_, t_):
        return np.sum(weight * reference_reduce(reference_losses(x_, t_, log_target), reduction))

    _, gx, gt = loss_and_grads(x, target, reduction, log_target, upstream)
    np.testing.assert_allclose(gx, central_difference(lambda a: scalar(a, target), x),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gt, central_difference(lambda a: scalar(x, a), target),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("log_target", [False, True])
def test_gradient_table_scaled_by_reduction(rng, n_threads, log_target):
    x, p = random_distributions(rng, (64, 1200))
    target = np.log(p) if log_target else p
    for reduction, scale in [("sum", 1.0), ("mean", 1 / x.size), ("batchmean", 1 / 64)]:
        _, gx, gt = loss_and_grads(x, target, reduction, log_target)
        if log_target:
            np.testing.assert_allclose(gx, -p * scale, rtol=1e-12)
            np.testing.assert_allclose(gt, p * (target - x + 1) * scale, rtol=1e-10, atol=1e-18)
        else:
            np.testing.assert_allclose(gx, -p * scale, rtol=1e-12)
            np.testing.assert_allclose(gt, (np.log(p) + 1 - x) * scale, rtol=1e-12)


def test_gradient_special_values_at_zero_target():
    x = np.array([-1.0, -np.inf, -2.0])
    p = np.array([0.0, 0.0, 0.5])
    _, gx, gt = loss_and_grads(x, p, "sum", False)
    np.testing.assert_array_equal(gx, [0.0, 0.0, -0.5])
    assert gt[0] == -np.inf
    _, gx, gt = loss_and_grads(x, np.array([-np.inf, -np.inf, np.log(0.5)]), "sum", True)
    np.testing.assert_array_equal(gx[:2], [0.0, 0.0])
    np.testing.assert_array_equal(gt[:2], [0.0, 0.0])


def sum_to_shape(a, shape):
    """Sum a broadcast gradient back to ``shape`` (the test's own unbroadcast)."""
    while a.ndim > len(shape):
        a = a.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and a.shape[axis] != 1:
            a = a.sum(axis=axis, keepdims=True)
    return a


@pytest.mark.parametrize("x_shape, t_shape", [((4, 1, 5), (3, 5)), ((5,), (2, 5)), ((2, 5), ())])
def test_broadcast_inputs_get_gradients_of_their_own_shape(rng, x_shape, t_shape):
    x = np.log(rng.random(x_shape))
    target = rng.random(t_shape)
    _, gx, gt = loss_and_grads(x, target, "sum", False)
    xb, tb = np.broadcast_arrays(x, target)
    assert gx.shape == x_shape and gt.shape == t_shape
    np.testing.assert_allclose(gx, sum_to_shape(-tb, x_shape), rtol=1e-12)
    np.testing.assert_allclose(gt, sum_to_shape(np.log(tb) + 1 - xb, t_shape), rtol=1e-12)


@pytest.mark.parametrize("x_dtype, t_dtype", [(np.float32, np.float64), (np.float16, np.float32)])
def test_each_gradient_has_its_input_dtype(rng, x_dtype, t_dtype):
    x, p = random_distributions(rng, (3, 4))
    xt = lucid.tensor(x.astype(x_dtype), requires_grad=True)
    tt = lucid.tensor(p.astype(t_dtype), requires_grad=True)
    kl_div(xt, tt, reduction="batchmean").backward()
    assert xt.grad.dtype == x_dtype and tt.grad.dtype == t_dtype
    np.testing.assert_allclose(xt.grad.numpy().astype(np.float64),
                               -p.astype(t_dtype).astype(np.float64) / 3, rtol=2e-3)


@pytest.mark.filterwarnings("ignore:reduction. .mean.:UserWarning")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_gradients_equal_reference_framework(rng, reduction, log_target):
    torch = pytest.importorskip("torch")
    x, p = random_distributions(rng, (6, 9))
    target = np.log(p) if log_target else p
    upstream = rng.standard_normal((6, 9)) if reduction == "none" else None
    _, gx, gt = loss_and_grads(x, target, reduction, log_target, upstream)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(target, requires_grad=True)
    loss = torch.nn.functional.kl_div(xt, tt, reduction=reduction, log_target=log_target)
    loss.backward(None if upstream is None else torch.tensor(upstream))
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gt, tt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("log_target", [False, True])
def test_hessian_vector_product_through_log_softmax_equals_reference_framework(rng, log_target):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((4, 6))
    _, p = random_distributions(rng, (4, 6))
    target = np.log(p) if log_target else p
    v = rng.standard_normal((4, 6))

    z = lucid.tensor(logits, requires_grad=True)
    loss = kl_div(log_softmax(z, dim=1), lucid.tensor(target), reduction="batchmean",
                  log_target=log_target)
    (g,) = lucid.autograd.grad(loss, z, create_graph=True)
    (hv,) = lucid.autograd.grad((g * lucid.tensor(v)).sum(), z)

    zt = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.kl_div(torch.log_softmax(zt, dim=1), torch.tensor(target),
                                        reduction="batchmean", log_target=log_target)
    (gt,) = torch.autograd.grad(loss_t, zt, create_graph=True)
    (hvt,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), zt)
    np.testing.assert_allclose(hv.numpy(), hvt.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("log_target", [False, True])
def test_second_derivatives_in_both_inputs_pass_gradcheck(rng, log_target):
    x, p = random_distributions(rng, (2, 3))
    target = np.log(p) if log_target else p
    xt = lucid.tensor(x, requires_grad=True)
    tt = lucid.tensor(target, requires_grad=True)

    def grad_sum(a, b):
        loss = kl_div(a, b, reduction="sum", log_target=log_target)
        ga, gb = lucid.autograd.grad(loss, (a, b), create_graph=True)
        return (ga * ga).sum() + (gb * gb).sum()

    assert lucid.autograd.gradcheck(grad_sum, (xt, tt))
