"""Property tests of kl_div's gradients against the gradient formulas of docs/api/kl_div.rst.

With g the upstream gradient already scaled by the reduction (1/N for "mean",
1/B for "batchmean") and p = target, or exp(target) with log_target:

    log_target=False: d/dx = -p g (0 where p == 0);  d/dtarget = (log p + 1 - x) g
    log_target=True:  d/dx = -exp(t) g;              d/dtarget = exp(t) (t - x + 1) g (0 at t == -inf)

Broadcast inputs get their gradient summed back to their own shape, in their own
dtype. Inputs come from ``hypothesis_kl_div_inputs`` (hostile shapes, layouts,
dtypes and values).
"""
import numpy as np
import pytest

pytest.importorskip("hypothesis")  # the test extra: without it these tests are skipped
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import lucid  # noqa: E402
from lucid.nn.functional import kl_div  # noqa: E402

from hypothesis_kl_div_inputs import (  # noqa: E402
    REDUCTIONS,
    assert_matches,
    compute_dtype,
    kl_div_inputs,
    p_times_difference,
    upstream_gradient,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


def scaled_upstream(shape, reduction, upstream):
    """g of the gradient table: the upstream gradient scaled by the reduction."""
    if reduction == "none":
        return upstream.astype(np.float64)
    if reduction == "mean":
        return np.full(shape, 1.0 / np.prod(shape)) if np.prod(shape) else np.zeros(shape)
    if reduction == "batchmean" and len(shape):
        return np.full(shape, 1.0 / shape[0]) if shape[0] else np.zeros(shape)
    return np.ones(shape)


def table_gradients(x, target, g, log_target):
    """(d/dx, d/dtarget, bound_x, bound_target) in float64, in the loss shape."""
    compute = np.finfo(compute_dtype(x.dtype, target.dtype))
    eps, tiny = float(compute.eps), float(compute.smallest_subnormal)
    x64, t = np.broadcast_arrays(x.astype(np.float64), target.astype(np.float64))
    with np.errstate(all="ignore"):
        if log_target:
            p = np.exp(t)
            grad_x = np.where(t == -np.inf, 0.0, -p_times_difference(p, t, g))
            # p > 0 even where exp(t) underflows: with x = +-inf, (t - x + 1) g is
            # infinite and its sign is the product's.
            grad_t = np.where(t == -np.inf, 0.0,
                              np.where(np.isinf(x64), (t - x64 + 1) * g,
                                       p_times_difference(p, t, (t - x64 + 1) * g)))
            log_p = t
        else:
            p = t
            grad_x = np.where(t == 0, 0.0, -p * g)
            log_p = np.log(t)
            grad_t = (log_p + 1 - x64) * g
        # A few roundings in the compute precision, and exp's gradual underflow.
        spread = (np.abs(log_p) + 1 + np.abs(x64)) * np.abs(g)
        bound_x = 4 * eps * np.abs(p * g) + 2 * tiny * (1 + np.abs(g))
        bound_t = 6 * eps * np.abs(p) * spread + 2 * tiny * (1 + spread) if log_target else \
            6 * eps * spread + 2 * tiny
    return grad_x, grad_t, _finite(bound_x), _finite(bound_t)


def _finite(bound):
    return np.where(np.isfinite(bound), bound, 0.0)


def sum_to_shape(full, shape):
    """Sum a loss-shaped array back to a broadcast input's ``shape``."""
    leading = full.ndim - len(shape)
    axes = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and full.shape[leading + i] != 1)
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as it should be
        return full.sum(axis=axes).reshape(shape) if axes else full


def reduced_bound(terms, bound, shape, dtype):
    """Bound after summing to ``shape``: the terms' bounds plus the compute-dtype sum's rounding."""
    n = max(1, terms.size // max(1, int(np.prod(shape))))
    finite_terms = np.where(np.isfinite(terms), np.abs(terms), 0.0)
    eps = float(np.finfo(dtype).eps)
    return sum_to_shape(bound, shape) + n * eps * sum_to_shape(finite_terms, shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True], ids=["p", "log_p"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_kl_div_gradients_follow_spec_table(data, reduction, log_target):
    x, target = data.draw(kl_div_inputs(log_target))
    x_leaf = lucid.Tensor(x, requires_grad=True)
    target_leaf = lucid.Tensor(target, requires_grad=True)
    loss = kl_div(x_leaf, target_leaf, reduction=reduction, log_target=log_target)
    upstream = data.draw(upstream_gradient(loss.shape, loss.dtype)) if reduction == "none" else None
    loss.backward(None if upstream is None else lucid.tensor(upstream))

    g = scaled_upstream(np.broadcast_shapes(x.shape, target.shape), reduction, upstream)
    grad_x, grad_t, bound_x, bound_t = table_gradients(x, target, g, log_target)
    compute = compute_dtype(x.dtype, target.dtype)
    for leaf, full, bound in [(x_leaf, grad_x, bound_x), (target_leaf, grad_t, bound_t)]:
        shape = leaf.shape
        got = leaf.grad.numpy()
        assert got.shape == shape and got.dtype == leaf.dtype
        assert_matches(got, sum_to_shape(full, shape),
                       reduced_bound(full, bound, shape, compute))
