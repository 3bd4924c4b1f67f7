"""The row kernel's accuracy bound (issue 11) against a long-double reference.

For float32 (and float16) logits and log-probabilities, each row's KL must be
within 1e-9 + 1e-7 * KL of the exact value on the same input values, exactly 0
for identical rows, and never negative from logits. The reference below works
in numpy's long double (64-bit significand on x86) on the values as stored.
"""
import math

import numpy as np
import pytest

from lucid.metrics import kl_div_per_row

from conftest import SIMD_AVAILABLE, simd_at

LONG = np.longdouble


def log_softmax_long(values, temperature):
    """log-softmax over the last axis in long double; -inf stays -inf."""
    scaled = np.asarray(values, LONG) / LONG(temperature)
    top = scaled.max(axis=-1, keepdims=True)
    return scaled - top - np.log(np.exp(scaled - top).sum(axis=-1, keepdims=True))


def reference_kl(student, teacher, temperature=1.0, kind="logits"):
    """KL(teacher || student) per row in long double; classes with p = 0 add 0."""
    if kind == "logits":
        log_p, log_q = log_softmax_long(teacher, temperature), log_softmax_long(student, temperature)
    else:
        log_p, log_q = np.asarray(teacher, LONG), np.asarray(student, LONG)
    with np.errstate(invalid="ignore"):
        terms = np.exp(log_p) * (log_p - log_q)
    return np.where(log_p == -np.inf, 0, terms).sum(axis=-1)


def assert_within_bound(got, expected):
    error = np.abs(got.astype(LONG) - expected)
    bound = 1e-9 + 1e-7 * np.abs(expected)
    worst = int(np.argmax(error / bound))
    assert np.all(error <= bound), (f"row {worst}: error {float(error[worst]):.3g} over the "
                                    f"bound {float(bound[worst]):.3g} (KL {float(expected[worst]):.3g})")


def logits(rng, shape, scale, dtype=np.float32):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 30.0])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_random_logits_are_within_the_bound(rng, scale, temperature):
    # 2500 classes span five of the kernel's blocks, the last one short.
    teacher = logits(rng, (12, 2500), scale)
    student = (teacher + logits(rng, teacher.shape, scale / 3)).astype(np.float32)
    got = kl_div_per_row(student, teacher, temperature=temperature)
    assert_within_bound(got, reference_kl(student, teacher, temperature))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_near_identical_rows_are_within_the_bound(rng, temperature):
    # Perturbing logits by ~1e-4 gives KLs around 1e-8, the small percentiles
    # an evaluation reads.
    teacher = logits(rng, (40, 3000), 3.0)
    student = (teacher + logits(rng, teacher.shape, 1e-4)).astype(np.float32)
    got = kl_div_per_row(student, teacher, temperature=temperature)
    expected = reference_kl(student, teacher, temperature)
    assert float(expected.max()) < 1e-6
    assert_within_bound(got, expected)
    assert np.all(got >= 0)


def test_rows_whose_maximum_keeps_rising_are_within_the_bound(rng):
    # Increasing logits: every block raises the running maximum, so the
    # running sums are rescaled at every block.
    teacher = np.sort(logits(rng, (4, 5000), 4.0), axis=-1)
    student = np.sort(logits(rng, (4, 5000), 4.0), axis=-1)
    got = kl_div_per_row(student, teacher, temperature=1.5)
    assert_within_bound(got, reference_kl(student, teacher, 1.5))


def test_large_vocabulary_rows_are_within_the_bound(rng):
    teacher = logits(rng, (2, 131072), 4.0)
    student = (teacher + logits(rng, teacher.shape, 0.5)).astype(np.float32)
    assert_within_bound(kl_div_per_row(student, teacher),
                        reference_kl(student, teacher))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("temperature", [0.7, 1.0, 3.0])
def test_identical_rows_give_exactly_zero(rng, dtype, temperature):
    row = logits(rng, (20, 2100), 5.0, dtype)
    assert np.all(kl_div_per_row(row, row.copy(), temperature=temperature) == 0.0)


def test_logits_never_give_a_negative_kl(rng):
    teacher = logits(rng, (200, 300), 2.0)
    student = (teacher + logits(rng, teacher.shape, 1e-6)).astype(np.float32)
    assert np.all(kl_div_per_row(student, teacher) >= 0)


def test_masked_and_huge_logits_are_within_the_bound(rng):
    teacher = logits(rng, (6, 1500), 3.0)
    student = (teacher + logits(rng, teacher.shape, 1.0)).astype(np.float32)
    teacher[0, 100:200] = student[0, 100:200] = -np.inf    # masked classes on both sides
    teacher[1, ::3] = -np.inf                              # the teacher rules classes out
    teacher[2, 7] += 3e4                                   # one huge logit
    student[3] += np.float32(1e30)                         # a huge shift of a whole row
    teacher[4, 1000] = student[4, 1000] = 3e38             # near float32's largest
    teacher[5, :1100] = student[5, :1100] = -np.inf        # a whole first block masked
    got = kl_div_per_row(student, teacher, temperature=2.0)
    assert_within_bound(got, reference_kl(student, teacher, 2.0))


def test_a_student_ruling_out_a_likely_class_gives_infinity(rng):
    teacher = logits(rng, (1, 50), 1.0)
    student = teacher.copy()
    student[0, 3] = -np.inf
    assert kl_div_per_row(student, teacher)[0] == math.inf


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_log_probability_inputs_are_within_the_bound(rng, dtype):
    teacher = np.asarray(log_softmax_long(logits(rng, (10, 4000), 3.0), 1.0), dtype)
    student = np.asarray(log_softmax_long(teacher.astype(np.float32)
                                          + logits(rng, teacher.shape, 0.3), 1.0), dtype)
    got = kl_div_per_row(student, teacher, student_kind="log-probs", teacher_kind="log-probs")
    assert_within_bound(got, reference_kl(student, teacher, kind="log-probs"))


def test_float64_logits_are_within_1e_12_relative(rng):
    teacher = logits(rng, (10, 3000), 4.0, np.float64)
    student = teacher + logits(rng, teacher.shape, 1.0, np.float64)
    expected = reference_kl(student, teacher, 1.3)
    got = kl_div_per_row(student, teacher, temperature=1.3)
    assert np.all(np.abs(got - expected) <= 1e-12 * expected)


@pytest.mark.parametrize("level", SIMD_AVAILABLE)
def test_every_simd_level_is_within_the_bound(rng, level):
    teacher = logits(rng, (8, 2500), 3.0)
    student = (teacher + logits(rng, teacher.shape, 0.5)).astype(np.float32)
    close = (teacher + logits(rng, teacher.shape, 1e-4)).astype(np.float32)
    with simd_at(level):
        got = kl_div_per_row(np.concatenate([student, close, teacher]),
                             np.concatenate([teacher, teacher, teacher]), temperature=2.0)
    expected = reference_kl(np.concatenate([student, close]),
                            np.concatenate([teacher, teacher]), 2.0)
    assert_within_bound(got[:16], expected)
    assert np.all(got[16:] == 0.0)
