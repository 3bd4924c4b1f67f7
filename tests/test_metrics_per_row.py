"""lucid.metrics.kl_div_per_row and its fused row kernel, against float64 references."""
import math

import numpy as np
import pytest

from lucid.metrics import kl_div_per_row
from lucid.nn.functional import kl_div

from conftest import SIMD_AVAILABLE, make_layout, reference_losses, simd_at

# scipy (the test extra) gives the reference log_softmax; without it these tests are skipped.
log_softmax = pytest.importorskip("scipy.special").log_softmax

KINDS = ["logits", "log-probs", "probs"]
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def as_kind(logits, kind):
    """The same distribution as logits, log-probabilities or probabilities."""
    if kind == "logits":
        return logits
    log_p = log_softmax(logits, axis=-1)
    return log_p if kind == "log-probs" else np.exp(log_p)


def reference_per_row(student, teacher, student_kind, teacher_kind, temperature):
    """KL(teacher || student) per row in float64, the temperature dividing logits only."""
    def log_probs(values, kind):
        values = np.asarray(values, np.float64)
        if kind == "logits":
            return log_softmax(values / temperature, axis=-1)
        return values if kind == "log-probs" else np.log(values)
    log_p, log_q = log_probs(teacher, teacher_kind), log_probs(student, student_kind)
    with np.errstate(invalid="ignore"):
        terms = np.exp(log_p) * (log_p - log_q)
    # p = 0: 0 log 0 = 0, also where q = 0; NaN for a NaN or +inf log q.
    zero_p = np.where(np.isnan(log_q) | (log_q == np.inf), np.nan, 0.0)
    return np.where(log_p == -np.inf, zero_p, terms).sum(axis=-1)


def logits_pair(rng, shape, dtype=np.float64):
    teacher = 3 * rng.standard_normal(shape)
    student = teacher + rng.standard_normal(shape)
    return student.astype(dtype), teacher.astype(dtype)


@pytest.mark.parametrize("student_kind", KINDS)
@pytest.mark.parametrize("teacher_kind", KINDS)
@pytest.mark.parametrize("temperature", [1.0, 0.5, 4.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_kind_and_temperature_match_float64_reference(rng, student_kind, teacher_kind,
                                                            temperature, dtype):
    student, teacher = logits_pair(rng, (50, 13))
    student = as_kind(student, student_kind).astype(dtype)
    teacher = as_kind(teacher, teacher_kind).astype(dtype)
    got = kl_div_per_row(student, teacher, student_kind=student_kind,
                         teacher_kind=teacher_kind, temperature=temperature)
    expected = reference_per_row(student, teacher, student_kind, teacher_kind, temperature)
    assert got.dtype == np.float64 and got.shape == (50,)
    np.testing.assert_allclose(got, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("log_target", [False, True])
def test_log_prob_inputs_equal_kl_div_summed_over_classes(rng, log_target):
    student, teacher = logits_pair(rng, (20, 9))
    log_q, log_p = log_softmax(student, axis=-1), log_softmax(teacher, axis=-1)
    target = log_p if log_target else np.exp(log_p)
    got = kl_div_per_row(log_q, target, student_kind="log-probs",
                         teacher_kind="log-probs" if log_target else "probs")
    expected = kl_div(log_q, target, reduction="none", log_target=log_target).numpy().sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_rows_are_bitwise_equal_for_any_thread_count(rng, n_threads):
    # 400 x 700 elements: enough work for the kernel to use both threads.
    student, teacher = logits_pair(rng, (400, 700), np.float32)
    got = kl_div_per_row(student, teacher, temperature=2.0)
    expected = np.concatenate([kl_div_per_row(student[i:i + 1], teacher[i:i + 1],
                                              temperature=2.0) for i in range(400)])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", ["transposed", "negative", "strided", "readonly_memmap"])
def test_any_layout_gives_the_contiguous_values(rng, layout, tmp_path):
    student, teacher = logits_pair(rng, (30, 11))
    expected = kl_div_per_row(student, teacher)
    got = kl_div_per_row(make_layout(student, layout, tmp_path),
                         make_layout(teacher, layout, tmp_path))
    np.testing.assert_array_equal(got, expected)


def test_leading_axes_give_per_row_shape(rng):
    student, teacher = logits_pair(rng, (4, 5, 6))
    got = kl_div_per_row(student, teacher)
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, reference_per_row(student, teacher, "logits", "logits", 1.0),
                               rtol=1e-12)


def test_leading_axes_that_do_not_merge_are_walked(rng):
    student, teacher = logits_pair(rng, (5, 4, 6))
    student, teacher = student.transpose(1, 0, 2), teacher.transpose(1, 0, 2)
    np.testing.assert_allclose(kl_div_per_row(student, teacher),
                               reference_per_row(student, teacher, "logits", "logits", 1.0),
                               rtol=1e-12)


def test_one_dimensional_inputs_are_one_distribution():
    got = kl_div_per_row(np.array([2.0, 0.5, 0.1]), np.array([0.8, 0.15, 0.05]),
                         teacher_kind="probs")
    assert got.shape == ()
    expected = reference_losses(log_softmax([2.0, 0.5, 0.1]), [0.8, 0.15, 0.05]).sum()
    assert float(got) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_float16_and_integer_inputs_are_converted(rng, dtype):
    student, teacher = (a.astype(dtype) for a in logits_pair(rng, (10, 8)))
    np.testing.assert_allclose(kl_div_per_row(student, teacher),
                               reference_per_row(student, teacher, "logits", "logits", 1.0),
                               rtol=1e-6, atol=1e-7)


def test_out_is_written_and_returned(rng):
    student, teacher = logits_pair(rng, (6, 3))
    out = np.full(6, -1.0)
    assert kl_div_per_row(student, teacher, out=out) is out
    np.testing.assert_allclose(out, reference_per_row(student, teacher, "logits", "logits", 1.0),
                               rtol=1e-12)


INF, NAN = math.inf, math.nan
# (student probs, teacher probs, KL of the row)
SPECIAL_ROWS = [
    ([0.0, 1.0], [0.0, 1.0], 0.0),              # p = q = 0 in a class: 0 log 0 = 0
    ([0.0, 1.0], [0.5, 0.5], INF),              # q = 0 where p > 0
    ([0.5, 0.5], [-0.1, 1.1], NAN),             # a negative probability: NaN, not clipped
    ([0.5, 0.5], [NAN, 1.0], NAN),
]


@pytest.mark.parametrize("student, teacher, expected", SPECIAL_ROWS)
def test_special_probabilities_follow_kl_div(student, teacher, expected):
    got = kl_div_per_row([student], np.array([teacher]), student_kind="probs",
                         teacher_kind="probs")
    assert got[0] == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize("logits, finite", [
    ([0.0, -INF, 1.0], True),     # a masked class: probability 0 on both sides
    ([0.0, NAN, 1.0], False),     # NaN anywhere poisons the row, as log_softmax does
    ([-INF, -INF, -INF], False),  # nothing left to normalise: NaN, as log_softmax
    ([0.0, INF, 1.0], False),
])
def test_special_logits_follow_log_softmax(logits, finite):
    row = np.array([logits])
    got = kl_div_per_row(row, row)[0]
    assert (got == 0.0) if finite else math.isnan(got)


def test_huge_logits_do_not_overflow():
    student = np.array([[1e4, 0.0, -1e4]])
    teacher = np.array([[1e4 - 1, 0.0, 0.0]])
    got = kl_div_per_row(student, teacher)
    expected = reference_per_row(student, teacher, "logits", "logits", 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("argument", ["student_kind", "teacher_kind"])
def test_unknown_kind_raises_value_error_naming_the_kinds(argument):
    with pytest.raises(ValueError, match=f"{argument} must be one of 'logits', 'log-probs', "
                                         "'probs'; got 'softmax'"):
        kl_div_per_row(np.zeros((1, 2)), np.zeros((1, 2)), **{argument: "softmax"})


@pytest.mark.parametrize("temperature", [0.0, -1.0, INF, NAN, True, "2"])
def test_bad_temperature_raises_value_error(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        kl_div_per_row(np.zeros((1, 2)), np.zeros((1, 2)), temperature=temperature)


def test_different_shapes_raise_value_error_naming_both():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        kl_div_per_row(np.zeros((2, 3)), np.zeros((2, 4)))


def test_zero_d_inputs_raise_value_error():
    with pytest.raises(ValueError, match="at least one dimension"):
        kl_div_per_row(np.float64(1.0), np.float64(1.0))


@pytest.mark.parametrize("dtype", [bool, np.complex128])
def test_bool_and_complex_inputs_raise_type_error(dtype):
    with pytest.raises(TypeError, match="student .*dtype (bool|complex128)"):
        kl_div_per_row(np.zeros((1, 2), dtype), np.zeros((1, 2)))


@pytest.mark.parametrize("out", [np.empty(3, np.float32), np.empty(4), np.empty((3, 2))[:, 0],
                                 [0.0, 0.0, 0.0]])
def test_unfit_out_raises_value_error(out):
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous float64"):
        kl_div_per_row(np.zeros((3, 2)), np.zeros((3, 2)), out=out)


def test_unaligned_buffers_give_the_same_rows():
    # float64 data at an odd byte offset: read through a copy, never misaligned.
    rng = np.random.default_rng(3)
    student, teacher = rng.standard_normal((2, 5, 7))
    raw = bytearray(1 + student.nbytes)
    raw[1:] = student.tobytes()
    unaligned = np.frombuffer(raw, dtype=np.float64, offset=1).reshape(5, 7)
    assert not unaligned.flags.aligned
    np.testing.assert_array_equal(kl_div_per_row(unaligned, teacher),
                                  kl_div_per_row(student, teacher))


@pytest.mark.parametrize("level", SIMD_AVAILABLE)
@pytest.mark.parametrize("student_kind, teacher_kind",
                         [("logits", "logits"), ("log-probs", "probs"), ("probs", "log-probs")])
def test_every_simd_level_matches_the_reference_over_chunked_rows(rng, level, student_kind,
                                                                  teacher_kind):
    # Rows of 9000 classes span three of the kernel's 4096-value chunks, the
    # last one short; a masked class, a NaN row and an all -inf row ride along.
    student, teacher = logits_pair(rng, (6, 9000))
    student[1, 4095:4098] = -INF
    teacher[1, 4095:4098] = -INF
    student[2, 8999] = NAN
    student[3, :] = -INF
    with np.errstate(all="ignore"):  # the NaN and -inf rows, on purpose
        student, teacher = as_kind(student, student_kind), as_kind(teacher, teacher_kind)
    with simd_at(level):
        got = kl_div_per_row(student, teacher, student_kind=student_kind,
                             teacher_kind=teacher_kind)
    with np.errstate(all="ignore"):
        expected = reference_per_row(student, teacher, student_kind, teacher_kind, 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert math.isnan(got[2]) and math.isnan(got[3])
