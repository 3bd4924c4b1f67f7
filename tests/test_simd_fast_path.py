"""The kernels' fast path gives the same bits as their full path (docs/performance.rst).

The run loops compute each group of up to 256 elements without deciding
special values, and compute the group again in full when a target in it is
zero, subnormal, infinite, negative or NaN (lucid/_ext/kl_simd.h). These
tests pair two inputs that differ only where the second has a zero target,
at a stride that puts one in every group, so that every group of the second
takes the full path. At those positions both losses are exactly 0:

- ``log_target=False``: p = 1, x = 0 gives 1 * (log 1 - 0) = 0 on the fast
  path; p = 0, x = 0 gives 0 on the full path.
- ``log_target=True``: log p = 0 (exp(0) = 1) against log p = -inf.

So every result, per element and reduced, must be bitwise identical, on every
SIMD level, for targets spread over the whole range the fast path takes.
"""
import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

# 3 blocks of 4096, two groups of 256 and a tail shorter than a vector.
SIZE = 3 * 4096 + 2 * 256 + 37
STRIDE = 97  # < 256: a zero target in every group
# The fast path's range: positive normal p, or |log p| <= the bound where
# exp(log p) is normal (LUCID_EXP_NORMAL in lucid/_ext/log_exp.h).
EXP_NORMAL = {np.float32: 87.0, np.float64: 708.0}



def ordinary_inputs(dtype, log_target, seed=0, wide=False):
    """x and a target inside the fast path's range.

    ``wide``: the whole range, up to the largest finite target, where some
    losses overflow to inf; otherwise targets up to 2**64 (or log p up to 40),
    whose sums stay finite.
    """
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    x = rng.standard_normal(SIZE).astype(dtype)
    if log_target:
        bound = EXP_NORMAL[dtype]
        t = rng.uniform(-bound, bound if wide else 40.0, SIZE).astype(dtype)
        t[:2] = [-bound, bound]  # the guard's edges are inside
        x[1] = t[1]  # a finite loss at the edge
    else:
        top = np.log2(float(info.max)) - 1 if wide else 64.0
        t = np.exp2(rng.uniform(np.log2(float(info.tiny)), top, SIZE)).astype(dtype)
        t[:2] = [info.tiny, info.max]  # the smallest normal and the largest finite
        x[1] = np.log(info.max)  # a finite loss at the edge
    return x, t


def paired_inputs(dtype, log_target, wide=False):
    """(x, target on the fast path everywhere), (x, target with a zero in every group)."""
    x, t = ordinary_inputs(dtype, log_target, wide=wide)
    x[::STRIDE] = 0
    fast, full = t.copy(), t.copy()
    fast[::STRIDE] = 0.0 if log_target else 1.0
    full[::STRIDE] = -np.inf if log_target else 0.0
    return (x, fast), (x, full)


def results(x, t, log_target):
    return [kl_div(x, t, reduction=r, log_target=log_target).numpy().tobytes()
            for r in ("none", "sum", "mean", "batchmean")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("log_target", [False, True], ids=["p", "log-p"])
@pytest.mark.parametrize("wide", [False, True], ids=["moderate", "wide"])
def test_fast_and_full_paths_give_the_same_bits(simd_level, dtype, log_target, wide):
    (x, fast), (_, full) = paired_inputs(dtype, log_target, wide)
    assert results(x, fast, log_target) == results(x, full, log_target)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("log_target", [False, True], ids=["p", "log-p"])
def test_the_pairing_is_not_vacuous(dtype, log_target):
    """The paired losses are finite and the sum non-zero, so equal bits say something."""
    (x, fast), _ = paired_inputs(dtype, log_target)
    loss = kl_div(x, fast, reduction="none", log_target=log_target).numpy()
    assert np.all(np.isfinite(loss))
    assert np.count_nonzero(loss) >= SIZE - SIZE // STRIDE - 2  # all but the zeros and the edge
    total = kl_div(x, fast, reduction="sum", log_target=log_target).item()
    assert np.isfinite(total) and total != 0
    (_, wide), _ = paired_inputs(dtype, log_target, wide=True)
    assert np.isfinite(kl_div(x, wide, reduction="none", log_target=log_target).numpy()).mean() > 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_fast_path_losses_match_a_float64_formula(simd_level, dtype):
    """On the fast path alone, per-element losses over the whole ordinary range
    agree with p * (log p - x) in float64, and x = -inf gives +inf."""
    x, p = ordinary_inputs(dtype, log_target=False, seed=1)
    x[5::300] = -np.inf
    got = kl_div(x, p, reduction="none").numpy()
    expected = p.astype(np.float64) * (np.log(p.astype(np.float64)) - x.astype(np.float64))
    finite = np.isfinite(expected)
    assert np.all(got[~finite] == expected[~finite])
    eps = float(np.finfo(dtype).eps)
    with np.errstate(over="ignore"):  # the edge element's scale overflows; it passes trivially
        scale = np.abs(p * np.log(p.astype(np.float64))) + np.abs(p * x.astype(np.float64))
    assert np.all(np.abs(got[finite] - expected[finite]) <= 4 * eps * scale[finite])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_fast_path_log_target_losses_match_a_float64_formula(simd_level, dtype):
    x, t = ordinary_inputs(dtype, log_target=True, seed=2)
    x[5::300] = -np.inf
    got = kl_div(x, t, reduction="none", log_target=True).numpy()
    t64, x64 = t.astype(np.float64), x.astype(np.float64)
    with np.errstate(over="ignore"):
        expected = np.exp(t64) * (t64 - x64)
        scale = np.exp(t64) * (np.abs(t64) + np.abs(x64))
    finite = np.isfinite(expected) & np.isfinite(expected.astype(dtype))
    assert np.all(got[np.isinf(x)] == np.inf)
    eps = float(np.finfo(dtype).eps)
    assert np.all(np.abs(got[finite] - expected[finite]) <= 4 * eps * scale[finite])


def test_thread_counts_agree_on_both_paths(simd_level):
    (x, fast), (_, full) = paired_inputs(np.float32, False)
    before = lucid.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 3):
            lucid.set_num_threads(n)
            runs.append(results(x, fast, False) + results(x, full, False))
    finally:
        lucid.set_num_threads(before)
    assert runs[0] == runs[1] == runs[2]
