"""compare_rows on the row kernel: argmax, label log-probabilities, several students,
layouts, dtypes, threads and small thread stacks."""
import threading
import tracemalloc

import numpy as np
import pytest

from lucid.metrics import compare_rows, kl_div_per_row

from conftest import SIMD_AVAILABLE, log_softmax_np as log_softmax, simd_at

KINDS = ["logits", "log-probs", "probs"]


def pair(rng, shape, dtype=np.float32):
    teacher = 3 * rng.standard_normal(shape)
    return (teacher + rng.standard_normal(shape)).astype(dtype), teacher.astype(dtype)


def as_kind(values, kind, temperature=1.0):
    """The values fed to the kernel as ``kind``, and their float64 log-probabilities."""
    log_p = log_softmax(values.astype(np.float64) / temperature, axis=-1)
    if kind == "logits":
        return values, log_p
    log_p = log_softmax(values.astype(np.float64), axis=-1)
    return (log_p, log_p) if kind == "log-probs" else (np.exp(log_p), log_p)


def reference(student, teacher, labels, student_kind, teacher_kind, temperature):
    """float64 KL, argmaxes and label log-probabilities, written with numpy."""
    student, log_q = as_kind(student, student_kind, temperature)
    teacher, log_p = as_kind(teacher, teacher_kind, temperature)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(-1)
    use = labels != -100
    index = np.where(use, labels, 0)[..., None]
    pick = lambda log: np.where(use, np.take_along_axis(log, index, -1)[..., 0], np.nan)
    return (student, teacher), (kl, student.argmax(-1), teacher.argmax(-1), pick(log_q),
                                pick(log_p))


@pytest.mark.parametrize("student_kind", KINDS)
@pytest.mark.parametrize("teacher_kind", KINDS)
def test_every_output_matches_numpy_for_every_kind_pair(rng, student_kind, teacher_kind):
    student, teacher = pair(rng, (30, 1500), np.float64)
    labels = rng.integers(0, 1500, 30)
    labels[::7] = -100
    (s, t), expected = reference(student, teacher, labels, student_kind, teacher_kind, 2.0)
    got = compare_rows(s, t, student_kind=student_kind, teacher_kind=teacher_kind,
                       temperature=2.0, labels=labels)
    for name, value, want in zip(got._fields, got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-13, err_msg=name)
    assert got.student_argmax.dtype == got.teacher_argmax.dtype == np.int64


def test_several_students_equal_each_student_alone_bitwise(rng):
    students = [pair(rng, (20, 2100))[0] for _ in range(3)]
    teacher = pair(rng, (20, 2100))[1]
    labels = rng.integers(0, 2100, 20)
    together = compare_rows(students, teacher, temperature=1.5, labels=labels)
    assert together.kl.shape == together.student_argmax.shape == (3, 20)
    assert together.teacher_argmax.shape == together.teacher_label_logprob.shape == (20,)
    for k, student in enumerate(students):
        alone = compare_rows(student, teacher, temperature=1.5, labels=labels)
        np.testing.assert_array_equal(together.kl[k], alone.kl)
        np.testing.assert_array_equal(together.student_argmax[k], alone.student_argmax)
        np.testing.assert_array_equal(together.student_label_logprob[k],
                                      alone.student_label_logprob)
        np.testing.assert_array_equal(together.teacher_label_logprob, alone.teacher_label_logprob)


def test_argmax_takes_the_first_of_equal_maxima_across_blocks():
    row = np.zeros((3, 3000), np.float32)
    row[0, [2500, 300, 1800]] = 5.0      # ties in three different blocks
    row[1, [10, 11]] = 7.0               # ties in one block
    row[2] = 1.0                         # every class ties
    got = compare_rows(row, row)
    np.testing.assert_array_equal(got.teacher_argmax, [300, 10, 0])
    np.testing.assert_array_equal(got.student_argmax, np.argmax(row, axis=-1))


def test_argmax_of_a_row_with_nan_is_numpys_first_nan():
    row = np.array([[0.0, 3.0, np.nan, 5.0, np.nan]])
    got = compare_rows(row, np.zeros((1, 5)))
    assert got.student_argmax[0] == np.argmax(row[0]) == 2
    assert np.isnan(got.kl[0])


def test_label_log_probabilities_are_after_the_temperature(rng):
    student, teacher = pair(rng, (5, 40), np.float64)
    labels = np.array([0, 39, 7, -100, 3])
    got = compare_rows(student, teacher, temperature=3.0, labels=labels)
    expected = log_softmax(student / 3.0, axis=-1)[np.arange(5), np.maximum(labels, 0)]
    np.testing.assert_allclose(got.student_label_logprob[[0, 1, 2, 4]], expected[[0, 1, 2, 4]],
                               rtol=1e-13)
    assert np.isnan(got.student_label_logprob[3]) and np.isnan(got.teacher_label_logprob[3])


def test_rows_are_bitwise_equal_for_any_thread_count_and_row_subset(rng, n_threads):
    students = [pair(rng, (300, 900))[0] for _ in range(2)]
    teacher = pair(rng, (300, 900))[1]
    labels = rng.integers(0, 900, 300)
    whole = compare_rows(students, teacher, temperature=2.0, labels=labels)
    part = compare_rows([s[123:130] for s in students], teacher[123:130], temperature=2.0,
                        labels=labels[123:130])
    for name, a, b in zip(whole._fields, whole, part):
        np.testing.assert_array_equal(a[..., 123:130], b, err_msg=name)


@pytest.mark.parametrize("level", SIMD_AVAILABLE)
def test_every_simd_level_gives_numpys_argmax_and_labels(rng, level):
    student, teacher = pair(rng, (10, 3000))
    labels = rng.integers(0, 3000, 10)
    with simd_at(level):
        got = compare_rows(student, teacher, labels=labels)
    (_, _), expected = reference(student, teacher, labels, "logits", "logits", 1.0)
    np.testing.assert_array_equal(got.student_argmax, expected[1])
    np.testing.assert_array_equal(got.teacher_argmax, expected[2])
    np.testing.assert_allclose(got.student_label_logprob, expected[3], rtol=1e-12)


def run_in_small_stack_thread(function):
    """Run ``function`` in a thread with a 128 KiB stack (musl's default)."""
    result = {}
    before = threading.stack_size(128 * 1024)
    try:
        thread = threading.Thread(target=lambda: result.setdefault("value", function()))
        thread.start()
        thread.join()
    finally:
        threading.stack_size(before)
    return result["value"]


def test_threads_with_small_stacks_run_the_kernel(rng, n_threads):
    student, teacher = pair(rng, (256, 1000))
    got = run_in_small_stack_thread(lambda: kl_div_per_row(student, teacher, temperature=2.0))
    np.testing.assert_array_equal(got, kl_div_per_row(student, teacher, temperature=2.0))


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.uint16, np.int32, np.int64,
                                   np.uint64])
def test_every_storage_type_gives_its_values_widened_bitwise(rng, dtype):
    student, teacher = (np.clip(a, -8, 8).astype(dtype) for a in pair(rng, (12, 1100)))
    if np.dtype(dtype).kind == "u":
        student, teacher = (np.abs(a) for a in (student, teacher))
    # Storage of 16 bits or fewer holds float32 values exactly (and gets
    # float32's exponential); wider integers are compared with float64.
    wide = np.float32 if np.dtype(dtype).itemsize <= 2 else np.float64
    got = compare_rows(student, teacher, temperature=2.0, labels=np.arange(12))
    expected = compare_rows(student.astype(wide), teacher.astype(wide),
                            temperature=2.0, labels=np.arange(12))
    for name, a, b in zip(got._fields, got, expected):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_mixed_dtypes_and_byte_orders_are_read_as_their_values(rng):
    student, teacher = pair(rng, (8, 700))
    expected = kl_div_per_row(student.astype(np.float64), teacher.astype(np.float64))
    np.testing.assert_array_equal(kl_div_per_row(student, teacher.astype(np.float64)), expected)
    np.testing.assert_array_equal(kl_div_per_row(student.astype(">f4"), teacher),
                                  kl_div_per_row(student, teacher))


def layouts(array):
    """The same values in layouts whose leading axes do not merge, and reversed strides."""
    yield "transposed leading axes", np.ascontiguousarray(array.transpose(1, 0, 2)).transpose(1, 0, 2)
    yield "negative strides", np.ascontiguousarray(array[::-1, :, ::-1])[::-1, :, ::-1]
    wide = np.zeros(array.shape[:-1] + (3 * array.shape[-1],), array.dtype)
    wide[..., ::3] = array
    yield "strided classes", wide[..., ::3]


def test_layouts_give_the_contiguous_values_bitwise(rng):
    student, teacher = pair(rng, (6, 5, 1300))
    labels = rng.integers(0, 1300, (6, 5))
    expected = compare_rows(student, teacher, labels=labels)
    for (name, s), (_, t) in zip(layouts(student), layouts(teacher)):
        got = compare_rows(s, t, labels=labels)
        for field, a, b in zip(got._fields, got, expected):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {field}")


def test_leading_axes_that_do_not_merge_allocate_nothing_input_sized(rng):
    # Sequence-first to batch-first: (4, 20000, 8) seen as (20000, 4, 8).
    student, teacher = (a.transpose(1, 0, 2) for a in pair(rng, (4, 20000, 8)))
    kl_div_per_row(student, teacher)  # warm up
    tracemalloc.start()
    try:
        got = kl_div_per_row(student, teacher)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < got.nbytes + 64 * 1024
    np.testing.assert_array_equal(got, kl_div_per_row(np.ascontiguousarray(student),
                                                      np.ascontiguousarray(teacher)))


def test_float16_inputs_are_not_copied(rng):
    student, teacher = (a.astype(np.float16) for a in pair(rng, (200, 1000)))
    kl_div_per_row(student, teacher)
    tracemalloc.start()
    try:
        kl_div_per_row(student, teacher)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_zero_classes_give_zero_kl_and_argmax():
    got = compare_rows(np.zeros((3, 0)), np.zeros((3, 0)), labels=np.full(3, -100))
    np.testing.assert_array_equal(got.kl, 0.0)
    np.testing.assert_array_equal(got.student_argmax, 0)
    assert np.isnan(got.student_label_logprob).all()
