"""Every SIMD level this CPU has gives the same answers (docs/performance.rst, "Accuracy").

The kernels carry baseline, AVX2 and AVX-512 builds of their loops and pick
one at import. Each test here runs on every level the machine can execute,
switched in-process with ``_simd._set_simd_level``; ``LUCID_SIMD`` itself is
checked in a subprocess.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import lucid
from lucid._ext import _simd
from lucid.nn.functional import kl_div

from conftest import SIMD_AVAILABLE, log_softmax_np, reference_losses, run_python, simd_at

INF, NAN = math.inf, math.nan



def at_level(level, compute):
    with simd_at(level):
        return compute()


def with_threads(n, compute):
    before = lucid.get_num_threads()
    lucid.set_num_threads(n)
    try:
        return compute()
    finally:
        lucid.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    """Log-probabilities and probabilities large enough for 3 threads, with
    zeros, subnormal and -inf entries spread over vector lanes and tails."""
    rng = np.random.default_rng(3)
    shape = (96, 4099)  # odd rows: runs end in a tail shorter than a vector
    x = log_softmax_np(rng.standard_normal(shape))
    p = np.exp(log_softmax_np(3 * rng.standard_normal(shape)))
    p.flat[rng.choice(p.size, 500, replace=False)] = 0.0
    p.flat[rng.choice(p.size, 500, replace=False)] = 1e-41  # subnormal in float32
    x.flat[rng.choice(x.size, 50, replace=False)] = -INF
    p[x == -INF] = 0.0  # keep the sum finite: 0 where q = 0
    return x, p


CASES = {
    "float32": lambda x, p: (x.astype(np.float32), p.astype(np.float32), False),
    "float32-log-target": lambda x, p: (x.astype(np.float32), np.log(p).astype(np.float32), True),
    "float64": lambda x, p: (x, p, False),
    "float64-log-target": lambda x, p: (x, np.log(p), True),
    "float16-target": lambda x, p: (x.astype(np.float32), p.astype(np.float16), False),
    "transposed": lambda x, p: (x.astype(np.float32).T, p.astype(np.float32).T, False),
}


def case_arrays(data, case):
    with np.errstate(divide="ignore"):
        return CASES[case](*data)


def cancellation_scale(x, t, log_target):
    """|p log p| + |p x| per element: what cancels inside a loss (S, the scale of the accuracy bound)."""
    x, t = x.astype(np.float64), t.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = np.exp(t) if log_target else t
        scale = np.abs(p * np.log(p)) + np.abs(p * x)
    return np.where(p > 0, scale, 0.0)


def reductions(x, t, log_target):
    return [kl_div(x, t, reduction=r, log_target=log_target).numpy().tobytes()
            for r in ("sum", "mean", "batchmean")]


@pytest.mark.parametrize("case", CASES)
def test_reductions_are_bitwise_identical_for_1_to_3_threads(simd_level, data, case):
    x, t, log_target = case_arrays(data, case)
    results = [with_threads(n, lambda: reductions(x, t, log_target)) for n in (1, 2, 3)]
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("case", [c for c in CASES if "float64" not in c])
def test_float32_reductions_of_all_levels_agree_within_one_ulp(data, case):
    x, t, log_target = case_arrays(data, case)
    sums = [at_level(level, lambda: kl_div(x, t, reduction="sum", log_target=log_target).item())
            for level in SIMD_AVAILABLE]
    ulp = float(np.spacing(np.float32(abs(sums[0]))))
    assert max(sums) - min(sums) <= ulp


@pytest.mark.parametrize("case", [c for c in CASES if "float64" in c])
def test_float64_reductions_of_all_levels_agree_within_the_spec_bound(data, case):
    x, t, log_target = case_arrays(data, case)
    scale = cancellation_scale(x, t, log_target).sum()
    sums = [at_level(level, lambda: kl_div(x, t, reduction="sum", log_target=log_target).item())
            for level in SIMD_AVAILABLE]
    assert max(sums) - min(sums) <= 1e-12 * scale


@pytest.mark.parametrize("case", ["float32", "float32-log-target", "float64",
                                  "float64-log-target"])
def test_elementwise_losses_of_all_levels_agree(data, case):
    # Per element the levels differ only by FMA contraction inside log/exp: a
    # rounding error relative to what cancels in p (log p - x).
    x, t, log_target = case_arrays(data, case)
    losses = [at_level(level, lambda: kl_div(x, t, reduction="none", log_target=log_target)
                       .numpy()) for level in SIMD_AVAILABLE]
    bound = (2.0**-22 if x.dtype == np.float32 else 1e-13) * cancellation_scale(x, t, log_target)
    finite = np.isfinite(losses[0])
    for other in losses[1:]:
        assert np.array_equal(np.isfinite(other), finite)
        assert np.all(np.abs(other - losses[0])[finite] <= bound[finite])


# The special rows of docs/api/kl_div.rst ("Special values"), as (x, p): each is placed at every position of
# a 37-element run, so that it lands in every vector lane and in the tail.
SPECIAL_PAIRS = [
    (-1.0, 0.5), (-1.0, 0.0), (-INF, 0.0), (-0.5, -0.0), (-INF, 0.5), (-1.0, -0.1),
    (NAN, 0.5), (NAN, 0.0), (-1.0, NAN), (INF, 0.0), (INF, 0.5), (-1.0, INF), (INF, INF),
    (-1.0, 1e-41), (-1e-41, 0.25), (-0.0, 1.0), (-100.0, 1e-30), (3.0, 0.99),
]


def special_grid(dtype, log_target):
    n = 37
    pairs = np.array(SPECIAL_PAIRS)
    x = np.full((len(pairs), n, n), -2.0)
    p = np.full((len(pairs), n, n), 0.125)
    for k, (xv, pv) in enumerate(pairs):
        idx = np.arange(n)
        x[k, idx, idx] = xv
        p[k, idx, idx] = pv
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(p) if log_target else p
    return x.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_target", [False, True])
def test_special_values_are_exact_in_every_lane(simd_level, dtype, log_target):
    x, t = special_grid(dtype, log_target)
    got = kl_div(x, t, reduction="none", log_target=log_target).numpy()
    expected = reference_losses(x, t, log_target)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got[np.isinf(expected)], expected[np.isinf(expected)])
    assert np.all(got[expected == 0] == 0) and not np.signbit(got[expected == 0]).any()
    # atol: a loss of subnormal size carries only the subnormal's few bits.
    tolerance = dict(rtol=2e-6, atol=1e-42) if dtype == np.float32 else dict(rtol=1e-13, atol=0)
    np.testing.assert_allclose(got, expected, equal_nan=True, **tolerance)


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("wrt", ["x", "target"])
def test_gradients_with_special_values_agree_across_levels(log_target, wrt):
    x, t = special_grid(np.float64, log_target)

    def gradient():
        xs = lucid.tensor(x, requires_grad=True)
        ts = lucid.tensor(t, requires_grad=True)
        kl_div(xs, ts, reduction="sum", log_target=log_target).backward()
        return (xs if wrt == "x" else ts).grad.numpy()

    grads = [at_level(level, gradient) for level in SIMD_AVAILABLE]
    for other in grads[1:]:
        np.testing.assert_allclose(other, grads[0], rtol=1e-13, atol=0, equal_nan=True)


@pytest.mark.parametrize("level", SIMD_AVAILABLE)
def test_lucid_simd_environment_variable_forces_a_level(level):
    child = run_python("import lucid; print(lucid.config()['simd'])", LUCID_SIMD=level)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == level


def test_lucid_simd_rejects_an_unknown_level_naming_the_allowed_ones():
    child = run_python("import lucid", LUCID_SIMD="sse9")
    assert child.returncode != 0
    assert "LUCID_SIMD='sse9'" in child.stderr
    assert "baseline, avx2, avx512" in child.stderr


def test_unset_lucid_simd_runs_the_best_level_the_cpu_has():
    env = {k: v for k, v in os.environ.items() if k != "LUCID_SIMD"}
    child = subprocess.run([sys.executable, "-c", "import lucid; print(lucid.config()['simd'])"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert child.stdout.strip() == _simd.cpu_simd_level()


def test_show_config_names_the_simd_level(capsys):
    lucid.show_config()
    assert f"SIMD:          {_simd.simd_level()}" in capsys.readouterr().out
