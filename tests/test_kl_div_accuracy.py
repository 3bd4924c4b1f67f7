"""Accuracy and determinism of the reductions (docs/performance.rst, "Accuracy")."""
import math

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div

from conftest import log_softmax_np


def float32_ulp(value):
    value = np.float32(value)
    return float(np.nextafter(value, np.float32(np.inf)) - value)


@pytest.fixture(scope="module")
def large_float32_pair():
    rng = np.random.default_rng(7)
    x = log_softmax_np(rng.standard_normal((512, 32000), dtype=np.float32)).astype(np.float32)
    p = np.exp(log_softmax_np(rng.standard_normal((512, 32000), dtype=np.float32)))
    return x, p.astype(np.float32)


def test_float32_sum_within_one_ulp_of_exact(large_float32_pair):
    x, p = large_float32_pair
    got = kl_div(x, p, reduction="sum")
    x64, p64 = x.astype(np.float64), p.astype(np.float64)
    exact = math.fsum((p64 * (np.log(p64) - x64)).ravel())
    assert got.dtype == np.float32
    assert abs(float(got.item()) - exact) <= float32_ulp(exact)


def test_float32_sum_is_bitwise_identical_for_1_to_4_threads(large_float32_pair):
    x, p = large_float32_pair
    before = lucid.get_num_threads()
    try:
        results = set()
        for threads in (1, 2, 3, 4):
            lucid.set_num_threads(threads)
            for reduction in ("sum", "mean", "batchmean"):
                results.add((reduction, kl_div(x, p, reduction=reduction).numpy().tobytes()))
    finally:
        lucid.set_num_threads(before)
    assert len(results) == 3


def test_float64_sum_within_spec_bound(rng):
    x = log_softmax_np(rng.standard_normal((64, 5000)))
    p = np.exp(log_softmax_np(rng.standard_normal((64, 5000))))
    got = kl_div(x, p, reduction="sum").item()
    terms = p * (np.log(p) - x)
    bound = 1e-12 * math.fsum(np.abs(p * np.log(p)).ravel()) + 1e-12 * math.fsum(
        np.abs(p * x).ravel())
    assert abs(got - math.fsum(terms.ravel())) <= bound
