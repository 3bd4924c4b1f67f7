"""log_target=True with log p above exp's range (issue 12, item 7).

exp(log p) overflows above ~88.7 (float32) or ~709.8 (float64), yet
p (log p - x) still fits wherever log p - x is small enough, and is 0 where
x == log p. The references below compute exp(t) * v in the log domain,
sign(v) exp(t + log|v|), in float64, independent of the kernels' scaling.
"""
import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

BIG_LOG_P = {
    np.float32: [50.0, 86.0, 88.0, 88.8, 95.0, 120.0, 170.0],
    np.float64: [700.0, 708.5, 709.9, 720.0, 1000.0, 1400.0],
}
OFFSETS = [0.0, -0.8, 0.8, -1e-3, 1.0, -1.0, 3.0]  # x = t + offset
RTOL = {np.float32: 2e-6, np.float64: 1e-12}


def exp_times(t, v):
    """exp(t) * v in the log domain (float64); 0 where v == 0."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(v == 0, 0.0, np.sign(v) * np.exp(t + np.log(np.abs(v))))


def grid(dtype):
    t = np.repeat(np.array(BIG_LOG_P[dtype], dtype=dtype), len(OFFSETS))
    x = (t.astype(np.float64) + np.tile(OFFSETS, len(BIG_LOG_P[dtype]))).astype(dtype)
    return x, t


def assert_matches(actual, reference, dtype):
    """Equal where the reference fits the dtype; inf of the right sign where it does not."""
    actual = np.asarray(actual, dtype=np.float64)
    fits = np.abs(reference) <= np.finfo(dtype).max * (1 - 1e-6)
    assert np.all(np.isfinite(actual[fits])), (actual[fits], reference[fits])
    np.testing.assert_allclose(actual[fits], reference[fits], rtol=RTOL[dtype], atol=0)
    assert np.all(actual[~fits] == np.sign(reference[~fits]) * np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_fit_wherever_the_result_fits(dtype, simd_level):
    x, t = grid(dtype)
    loss = kl_div(x, t, reduction="none", log_target=True).numpy()
    t64, x64 = t.astype(np.float64), x.astype(np.float64)
    assert_matches(loss, exp_times(t64, t64 - x64), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_large_log_targets_give_zero_loss(dtype):
    t = np.array(BIG_LOG_P[dtype] + [np.finfo(dtype).max], dtype=dtype)
    loss = kl_div(t.copy(), t, reduction="none", log_target=True).numpy()
    assert np.all(loss == 0), loss
    assert kl_div(t.copy(), t, reduction="sum", log_target=True).item() == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_over_a_long_run_of_large_log_targets_is_finite(dtype):
    # Long enough for the vectorised groups, which route such targets to the full path.
    x, t = grid(dtype)
    x, t = np.tile(x, 40), np.tile(t, 40)
    t64, x64 = t.astype(np.float64), x.astype(np.float64)
    per_element = exp_times(t64, t64 - x64)
    fits = np.abs(per_element) < np.finfo(dtype).max / len(t)
    total = kl_div(x[fits], t[fits], reduction="sum", log_target=True).item()
    assert np.isfinite(total)
    np.testing.assert_allclose(total, np.sum(per_element[fits]), rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_fit_wherever_they_fit(dtype, simd_level):
    x, t = grid(dtype)
    # A small upstream gradient: exp(t) * g fits even where exp(t) alone does not.
    g = np.full(x.shape, 1e-12, dtype=dtype)
    xt = lucid.tensor(x, requires_grad=True)
    tt = lucid.tensor(t, requires_grad=True)
    kl_div(xt, tt, reduction="none", log_target=True).backward(lucid.tensor(g))
    t64, x64, g64 = t.astype(np.float64), x.astype(np.float64), g.astype(np.float64)
    assert_matches(xt.grad.numpy(), -exp_times(t64, g64), dtype)
    assert_matches(tt.grad.numpy(), exp_times(t64, (t64 - x64 + 1) * g64), dtype)


def test_ordinary_log_targets_keep_their_values():
    # The scaling applies above exp's range only: below it the losses are p (t - x).
    rng = np.random.default_rng(3)
    t = rng.uniform(-20, 20, 1000)
    x = rng.uniform(-20, 20, 1000)
    loss = kl_div(x, t, reduction="none", log_target=True).numpy()
    np.testing.assert_allclose(loss, np.exp(t) * (t - x), rtol=1e-13, atol=0)
