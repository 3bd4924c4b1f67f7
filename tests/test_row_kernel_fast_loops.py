"""The row kernel's AVX-512 loops (row_avx512.h) at their edges: row lengths
around vector and block boundaries, blocks whose exponentials need the clamp,
argmaxes in later blocks and ties, log-probabilities beyond the fast range.

Each case is checked against the long-double reference of
test_row_kernel_accuracy.py and numpy's argmax, on every SIMD level this CPU
runs (the lower levels run the generic loops, so the levels also agree within
the bound).
"""
import numpy as np
import pytest

from lucid.metrics import compare_rows, kl_div_per_row

from conftest import SIMD_AVAILABLE, simd_at
from test_row_kernel_accuracy import assert_within_bound, log_softmax_long, reference_kl


@pytest.fixture(params=SIMD_AVAILABLE)
def level(request):
    with simd_at(request.param):
        yield request.param


def close_pair(rng, shape, scale=3.0, noise=0.5):
    teacher = (scale * rng.standard_normal(shape)).astype(np.float32)
    return (teacher + noise * rng.standard_normal(shape)).astype(np.float32), teacher


@pytest.mark.parametrize("cols", [1, 2, 7, 8, 9, 15, 16, 17, 31, 511, 512, 513, 1023, 1025, 1537])
def test_row_lengths_around_vectors_and_blocks(rng, level, cols):
    student, teacher = close_pair(rng, (5, cols))
    labels = rng.integers(0, cols, 5)
    got = compare_rows(student, teacher, temperature=2.0, labels=labels)
    assert_within_bound(got.kl, reference_kl(student, teacher, 2.0))
    np.testing.assert_array_equal(got.student_argmax, student.argmax(-1))
    np.testing.assert_array_equal(got.teacher_argmax, teacher.argmax(-1))
    log_q = log_softmax_long(student, 2.0)[np.arange(5), labels]
    # The weights' exponential is good to ~1e-10 (generic) or ~1e-12 (AVX-512).
    np.testing.assert_allclose(got.student_label_logprob, log_q.astype(np.float64),
                               rtol=0, atol=1e-9)


def test_blocks_whose_exponentials_fall_below_the_fast_range(rng, level):
    # A spread of thousands: many (v - max) / T lie below -700 in every block,
    # beside ordinary ones, so both the clamped and the plain loops run.
    student, teacher = close_pair(rng, (6, 3000), scale=400.0, noise=20.0)
    teacher[0, :600] = -5e4                 # a whole first block far below
    student[1, 1024:1536] = -1e6            # a whole later block of the student
    got = kl_div_per_row(student, teacher, temperature=1.0)
    assert_within_bound(got, reference_kl(student, teacher, 1.0))


def test_the_largest_value_in_a_later_block_and_ties_across_blocks(rng, level):
    student, teacher = close_pair(rng, (4, 2000))
    teacher[0, 1700] = 50.0                         # the maximum in the last block
    teacher[1, [30, 900, 1500]] = 40.0              # a tie across three blocks: the first wins
    student[2, [511, 512]] = 40.0                   # a tie across a block boundary
    student[3, 1999] = 60.0                         # the very last column
    got = compare_rows(student, teacher, temperature=2.0)
    np.testing.assert_array_equal(got.teacher_argmax, teacher.argmax(-1))
    np.testing.assert_array_equal(got.student_argmax, student.argmax(-1))
    assert_within_bound(got.kl, reference_kl(student, teacher, 2.0))


def test_a_nan_anywhere_gives_nan_and_numpys_argmax(rng, level):
    student, teacher = close_pair(rng, (3, 1300))
    teacher[0, 1200] = np.nan
    student[1, 5] = np.nan
    student[2, 700] = np.inf
    got = compare_rows(student, teacher)
    assert np.all(np.isnan(got.kl))
    np.testing.assert_array_equal(got.student_argmax, student.argmax(-1))
    np.testing.assert_array_equal(got.teacher_argmax, teacher.argmax(-1))


def test_log_probabilities_beyond_the_fast_exponentials_range(rng, level):
    teacher = np.asarray(log_softmax_long(close_pair(rng, (4, 1200), scale=300.0)[1], 1.0),
                         np.float32)
    student = np.asarray(log_softmax_long(teacher + rng.standard_normal(teacher.shape)
                                          .astype(np.float32), 1.0), np.float32)
    teacher[0, :10] = -800.0    # below the fast range: weight 0 (e**-800 underflows)
    got = kl_div_per_row(student, teacher, student_kind="log-probs", teacher_kind="log-probs")
    assert_within_bound(got, reference_kl(student, teacher, kind="log-probs"))


def test_several_students_each_match_their_own_pair(rng, level):
    teacher = close_pair(rng, (7, 2100))[1]
    students = [(teacher + n * rng.standard_normal(teacher.shape)).astype(np.float32)
                for n in (0.1, 1.0, 3.0)]
    together = compare_rows(students, teacher, temperature=1.5)
    for k, student in enumerate(students):
        alone = compare_rows(student, teacher, temperature=1.5)
        np.testing.assert_array_equal(together.kl[k], alone.kl)
        np.testing.assert_array_equal(together.student_argmax[k], alone.student_argmax)


@pytest.mark.parametrize("temperature", [3.0, 1e-3, 1e-30])
def test_huge_logits_and_tiny_temperatures_in_float32(rng, level, temperature):
    # (v - max) / T is exact where v / T - max / T would carry half an ulp of
    # max / T, which for logits near 1e9 or a tiny T is no longer negligible.
    student, teacher = close_pair(rng, (5, 1200))
    teacher[0] = teacher[0] * 300 + np.float32(1e9)  # a whole row far from 0 ...
    student[0] = teacher[0] + np.float32(128)        # ... and the same one shifted: KL 0
    student[1] = teacher[1]                       # identical rows: exactly 0
    got = kl_div_per_row(student, teacher, temperature=temperature)
    wide = kl_div_per_row(student.astype(np.float64), teacher.astype(np.float64),
                          temperature=temperature)
    assert got[1] == 0.0
    assert_within_bound(got, reference_kl(student, teacher, temperature))
    np.testing.assert_allclose(got, wide, rtol=1e-7, atol=1e-9)
