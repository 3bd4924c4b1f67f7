"""Gradients of float16 inputs are rounded to float16 exactly as numpy rounds (to nearest even).

The kernels compute in float32 or float64 and store a float16 input's
gradient through their own float -> half conversion; it must agree with
numpy's ``astype(np.float16)`` bit for bit on every kind of value.
"""
import numpy as np

from lucid._ext import _distill


def as_half_bits(values):
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(values.shape, np.uint16)
    _distill._float_to_half(values, out)
    return out


def test_every_float_near_the_half_range_rounds_as_numpy():
    # Float32 bit patterns across the half range and a little beyond
    # (subnormal halves, normal halves, overflow to inf): every 331st, an odd
    # step so that ties and odd/even mantissas are all met, and every pattern
    # around the smallest normal half and the largest finite one.
    bits = np.concatenate([np.arange(0x33000000, 0x47900000, 331, dtype=np.uint32),
                           np.arange(0x387f0000, 0x38810000, dtype=np.uint32),
                           np.arange(0x477fe000, 0x47802000, dtype=np.uint32)])
    values = bits.view(np.float32)
    with np.errstate(over="ignore"):
        for signed in (values, -values):
            np.testing.assert_array_equal(as_half_bits(signed),
                                          signed.astype(np.float16).view(np.uint16))


def test_ties_round_to_even():
    # Exactly halfway between two halves: 1 + 2**-11 rounds down to 1, 1 + 3 * 2**-11 up.
    ties = np.array([1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 2.0 ** -25, 3 * 2.0 ** -25, 65520.0],
                    np.float32)
    with np.errstate(over="ignore"):
        want = ties.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(as_half_bits(ties), want)


def test_special_values():
    special = np.array([0.0, -0.0, np.inf, -np.inf, 1e30, -1e30, 1e-30], np.float32)
    with np.errstate(over="ignore"):
        want = special.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(as_half_bits(special), want)
    nan = as_half_bits(np.array([np.nan], np.float32)).view(np.float16)
    assert np.isnan(nan[0])
