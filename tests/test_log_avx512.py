"""log_avx512.h's logarithm (the distillation JSD's mixture log) against math.log.

Its contract: for m >= 0, an absolute error below 4e-12 plus 1e-16 |log m|;
0 gives -inf, +inf gives +inf, NaN stays NaN, subnormals are exact.
"""
import math

import numpy as np
import pytest

from lucid._ext import _distill, _simd

pytestmark = pytest.mark.skipif(_simd.cpu_simd_level() != "avx512",
                                reason="the AVX-512 loops need an AVX-512 CPU")


def log16(values):
    m = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(m)
    _distill._log16(m, out)
    return out


def test_every_sixteenth_and_octave():
    # Values across the table's sixteen intervals of every binade a
    # probability mixture takes, their edges included, and odd lengths.
    rng = np.random.default_rng(0)
    mantissas = np.concatenate([1 + np.arange(33) / 32, 1 + rng.random(4000),
                                np.nextafter(1 + np.arange(1, 17) / 16, 0)])
    for exponent in (-1074, -1060, -1022, -700, -100, -3, -1, 0, 1, 40, 1000):
        m = np.ldexp(mantissas, exponent)
        m = m[np.isfinite(m) & (m > 0)]
        want = np.array([math.log(v) for v in m])
        got = log16(m)
        assert np.all(np.abs(got - want) <= 4e-12 + 1e-16 * np.abs(want)), exponent


def test_near_one():
    # Where log m is near 0 the result is the sum of e log 2 and log c of
    # opposite signs: the bound is absolute.
    m = 1 + np.linspace(-1e-3, 1e-3, 2001)
    want = np.array([math.log(v) for v in m])
    assert np.max(np.abs(log16(m) - want)) <= 4e-12


def test_special_values():
    got = log16([0.0, np.inf, np.nan, 5e-324, 1.0, 2.0, 0.5])
    assert got[0] == -np.inf and got[1] == np.inf and np.isnan(got[2])
    assert abs(got[3] - math.log(5e-324)) <= 4e-12 + 1e-16 * 745
    assert abs(got[4]) <= 4e-12 and abs(got[5] - math.log(2)) <= 4e-12
    assert abs(got[6] + math.log(2)) <= 4e-12


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 17])
def test_lengths(n):
    m = np.linspace(0.1, 3.0, n)
    np.testing.assert_allclose(log16(m), np.log(m), rtol=0, atol=4e-12)
