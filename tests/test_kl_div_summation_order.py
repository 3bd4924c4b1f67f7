"""float32 sums meet the contract's bound and do not depend on layout (issue 12, item 6).

Lanes once added 16 float32 losses before folding into float64, which lost
small terms next to a large one (7.4 ulp on the issue's example) and made the
result depend on memory order. Losses now reach float64 lanes in pairs, and the
summation order is that of the logical C-order index of the loss shape, so
the same values give the same bits in any layout.
"""
import math

import numpy as np
import pytest

from lucid.nn.functional import kl_div

from conftest import LAYOUTS, make_layout


def exact_sum_and_scale(x, target):
    """fsum of the float64 losses of the (float32) values, and S = sum |p log p| + |p x|."""
    x64, t64 = np.broadcast_arrays(x.astype(np.float64), target.astype(np.float64))
    log_p = np.log(t64)
    losses = t64 * (log_p - x64)
    return math.fsum(losses.ravel()), math.fsum(np.abs(t64 * log_p).ravel()) + math.fsum(
        np.abs(t64 * x64).ravel())


def test_small_terms_beside_a_large_one_are_kept(simd_level):
    # The example: every small term fell into the lane holding 1.0.
    x = np.zeros(256, np.float32)
    x[0] = -1
    x[16::16] = -np.float32(0.99 * 2**-24)
    p = np.ones(256, np.float32)
    exact, scale = exact_sum_and_scale(x, p)
    got = kl_div(x, p, reduction="sum").item()
    assert abs(got - exact) <= 2**-22 * scale, (got, exact)
    assert got > 1.0


def test_fortran_and_c_order_give_the_same_bits_and_the_bound():
    # A (64, 24) array of such terms: C and Fortran order once summed them
    # into different lanes and gave different results, both off by ulps.
    x = np.zeros(64 * 24, np.float32)
    x[::97] = -1
    x[1::2] = -np.float32(0.99 * 2**-24)
    x = x.reshape(64, 24)
    p = np.ones_like(x)
    exact, scale = exact_sum_and_scale(x, p)
    c_order = kl_div(x, p, reduction="sum").item()
    fortran = kl_div(np.asfortranarray(x), np.asfortranarray(p), reduction="sum").item()
    assert c_order == fortran
    assert abs(c_order - exact) <= 2**-22 * scale, (c_order, exact)


@pytest.mark.parametrize("seed", range(4))
def test_float32_sums_are_within_the_contract_bound(seed, n_threads):
    rng = np.random.default_rng(seed)
    n = 100_000
    # Wide magnitudes and cancelling signs: log-probabilities of both signs' losses.
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-20, 8, n))).astype(np.float32)
    p = np.exp2(rng.uniform(-30, 0, n)).astype(np.float32)
    exact, scale = exact_sum_and_scale(x, p)
    got = kl_div(x, p, reduction="sum").item()
    assert abs(got - exact) <= 2**-22 * scale, (got, exact, scale)


def same_values(array, layout, tmp_path):
    if layout == "broadcast":
        # A row repeated by a zero stride, against its materialised copy.
        return np.broadcast_to(np.ascontiguousarray(array[:1]), array.shape)
    return make_layout(array, layout, tmp_path)


@pytest.mark.parametrize("layout", LAYOUTS + ["fortran", "broadcast"])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float64),
                                    (np.float16, np.float32), (np.float32, np.float64)],
                         ids=lambda pair: "-".join(np.dtype(d).name for d in pair))
@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
def test_every_layout_gives_the_same_bits(rng, tmp_path, n_threads, layout, dtypes, reduction):
    shape = (96, 1000)  # several blocks per thread
    x = np.log(rng.uniform(1e-4, 1.0, shape)).astype(dtypes[0])
    p = rng.uniform(0.0, 1.0, shape).astype(dtypes[1])
    if layout == "broadcast":
        x, p = np.repeat(x[:1], shape[0], axis=0), np.repeat(p[:1], shape[0], axis=0)
    if layout == "fortran":
        x_other, p_other = np.asfortranarray(x), np.asfortranarray(p)
    else:
        x_other, p_other = same_values(x, layout, tmp_path), same_values(p, layout, tmp_path)
    np.testing.assert_array_equal(x_other, x)
    expected = kl_div(x, p, reduction=reduction).item()
    got = kl_div(x_other, p_other, reduction=reduction).item()
    assert got == expected or (math.isnan(got) and math.isnan(expected)), (got, expected)
