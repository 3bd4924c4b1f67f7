"""distillation_loss on every layout, dtype, special value, mask, thread count and SIMD level.

References are the float64 composition of ``distillation_reference``; the
layouts are read in place (memory is checked with tracemalloc, which sees
numpy's arrays and the kernels' row buffers).
"""
import warnings

import numpy as np
import pytest

import lucid
from distillation_reference import per_row
from lucid.nn.functional import distillation_loss

from memory import traced_peak

MiB = 1 << 20


def logits(shape, dtype=np.float64, seed=0):
    return (2 * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def loss_and_grads(student, teacher, temperature=2.0, **options):
    s = lucid.tensor(student, requires_grad=True)
    t = lucid.tensor(teacher, requires_grad=True)
    loss = distillation_loss(s, t, temperature, **options)
    loss.sum().backward()
    return loss.detach().numpy(), s.grad.numpy(), t.grad.numpy()


@pytest.mark.parametrize("dim", [0, 1, -2, 2, -1])
def test_any_class_axis(dim):
    student, teacher = logits((4, 5, 6), seed=1), logits((4, 5, 6), seed=2)
    loss, grad_s, grad_t = loss_and_grads(student, teacher, dim=dim, reduction="none")
    losses, want_s, want_t = per_row(student, teacher, 2.0, dim=dim)
    np.testing.assert_allclose(loss, 4.0 * losses, rtol=1e-12)
    np.testing.assert_allclose(grad_s, 4.0 * want_s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad_t, 4.0 * want_t, rtol=1e-12, atol=1e-15)


def test_batchmean_divides_by_the_number_of_distributions():
    student, teacher = logits((3, 4, 7), seed=3), logits((3, 4, 7), seed=4)
    loss = distillation_loss(student, teacher, 1.0).item()
    np.testing.assert_allclose(loss, per_row(student, teacher, 1.0)[0].sum() / 12, rtol=1e-12)


@pytest.mark.parametrize("layout", ["transposed", "reversed", "strided", "broadcast teacher",
                                    "broadcast student", "read-only", "fortran"])
def test_layouts_are_read_in_place_with_the_same_result(layout):
    base_s, base_t = logits((6, 5, 9), seed=5), logits((6, 5, 9), seed=6)
    student, teacher = base_s, base_t
    if layout == "transposed":
        student, teacher = base_s.transpose(1, 0, 2), base_t.transpose(1, 0, 2)
    elif layout == "reversed":
        student, teacher = base_s[::-1, :, ::-1], base_t[::-1, :, ::-1]
    elif layout == "strided":
        student, teacher = base_s[:, :, ::2], base_t[::2, :, ::2][:1]
    elif layout == "broadcast teacher":
        teacher = base_t[0, 0]
    elif layout == "broadcast student":
        student = base_s[:, :1]
    elif layout == "read-only":
        student.flags.writeable = teacher.flags.writeable = False
    elif layout == "fortran":
        student, teacher = np.asfortranarray(base_s), np.asfortranarray(base_t)
    loss, grad_s, grad_t = loss_and_grads(student, teacher, reduction="none")
    losses, want_s, want_t = per_row(student, teacher, 2.0)
    np.testing.assert_allclose(loss, 4.0 * losses, rtol=1e-12)
    np.testing.assert_allclose(grad_s, summed_to(4.0 * want_s, student.shape),
                               rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(grad_t, summed_to(4.0 * want_t, teacher.shape),
                               rtol=1e-11, atol=1e-14)


def summed_to(grad, shape):
    """A broadcast input's gradient: summed over the axes broadcasting added or stretched."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def test_float16_computes_in_float32_and_returns_float16():
    student, teacher = logits((5, 8), np.float16, 7), logits((5, 8), np.float16, 8)
    loss, grad_s, grad_t = loss_and_grads(student, teacher, reduction="none")
    losses, want_s, _ = per_row(student, teacher, 2.0)
    assert loss.dtype == grad_s.dtype == grad_t.dtype == np.float16
    # Rounded once to float16 (2**-11 relative) from a float64-accurate value.
    np.testing.assert_allclose(loss, (4.0 * losses).astype(np.float16), rtol=1e-3)
    np.testing.assert_allclose(grad_s, (4.0 * want_s).astype(np.float16), rtol=1e-3, atol=1e-7)


def test_mixed_dtypes_promote_and_each_gradient_keeps_its_dtype():
    student, teacher = logits((5, 8), np.float32, 9), logits((5, 8), np.float64, 10)
    loss, grad_s, grad_t = loss_and_grads(student, teacher)
    assert loss.dtype == grad_t.dtype == np.float64 and grad_s.dtype == np.float32
    losses, want_s, _ = per_row(student, teacher, 2.0)
    np.testing.assert_allclose(loss, 4.0 * losses.mean(), rtol=1e-12)
    np.testing.assert_allclose(grad_s, 4.0 * want_s / 5, rtol=1e-6, atol=1e-7)


def test_minus_infinity_logits_as_the_composition_gives_them():
    student, teacher = logits((4, 6), seed=11), logits((4, 6), seed=12)
    teacher[0, 2] = -np.inf                       # p = 0 there: adds 0
    student[0, 2] = -np.inf                       # ... also where q = 0 (0 log 0 = 0)
    student[1, 3] = -np.inf                       # q = 0 where p > 0: KL = +inf
    teacher[2] = -np.inf                          # every teacher logit -inf: NaN
    student[3, :] = -np.inf
    student[3, 1] = 0.0                           # q one-hot: finite, KL > 0
    loss, grad_s, _ = loss_and_grads(student, teacher, reduction="none")
    losses, want_s, _ = per_row(student, teacher, 2.0)
    assert np.isfinite(loss[0]) and loss[1] == np.inf and np.isnan(loss[2])
    np.testing.assert_allclose(loss, 4.0 * losses, rtol=1e-12)
    finite = np.isfinite(want_s)
    np.testing.assert_allclose(grad_s[finite], 4.0 * want_s[finite], rtol=1e-12, atol=1e-15)
    assert np.all(np.isnan(grad_s[2]))


def test_masked_rows_full_of_minus_inf_and_nan_are_never_read():
    student, teacher = logits((4, 6), seed=13), logits((4, 6), seed=14)
    student[1] = -np.inf
    teacher[2] = np.nan
    keep = np.array([True, False, False, True])
    for reduction in ("sum", "batchmean"):
        loss, grad_s, grad_t = loss_and_grads(student, teacher, reduction=reduction,
                                              mask=keep)
        losses, want_s, _ = per_row(student[keep], teacher[keep], 2.0)
        want = 4.0 * losses.sum() / (1 if reduction == "sum" else 2)
        np.testing.assert_allclose(loss, want, rtol=1e-12)
        assert np.all(grad_s[~keep] == 0) and np.all(grad_t[~keep] == 0)
        assert np.all(np.isfinite(grad_s))


@pytest.mark.parametrize("reduction, want", [("sum", 0.0), ("mean", np.nan),
                                             ("batchmean", np.nan)])
def test_all_masked_gives_zero_sum_nan_means_zero_gradients_and_no_warning(reduction, want):
    student, teacher = logits((3, 5), seed=15), logits((3, 5), seed=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad_s, grad_t = loss_and_grads(student, teacher, reduction=reduction,
                                              mask=np.zeros(3, bool))
    np.testing.assert_array_equal(loss, want)
    assert np.all(grad_s == 0) and np.all(grad_t == 0)


def test_mask_broadcasts_to_the_per_distribution_shape():
    student, teacher = logits((2, 3, 5), seed=17), logits((2, 3, 5), seed=18)
    keep = np.array([True, False, True])          # broadcast over the batch axis
    loss = distillation_loss(student, teacher, 2.0, reduction="none", mask=keep).numpy()
    losses = 4.0 * per_row(student, teacher, 2.0)[0]
    np.testing.assert_allclose(loss, np.where(keep, losses, 0.0), rtol=1e-12)


def test_results_do_not_depend_on_the_thread_count():
    # Large enough that the kernels use two threads.
    student, teacher = logits((64, 4096), np.float32, 19), logits((64, 4096), np.float32, 20)
    before = lucid.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            lucid.set_num_threads(threads)
            results.append([loss_and_grads(student, teacher, reduction="none",
                                           divergence=d) for d in ("kl", "jsd")])
    finally:
        lucid.set_num_threads(before)
    for one, two in zip(*results):
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)


def test_every_simd_level_matches_the_composition(simd_level):
    student, teacher = logits((8, 300), np.float32, 21), logits((8, 300), np.float32, 22)
    for divergence in ("kl", "reverse_kl", "jsd"):
        loss, grad_s, grad_t = loss_and_grads(student, teacher, reduction="none",
                                              divergence=divergence)
        losses, want_s, want_t = per_row(student, teacher, 2.0, divergence)
        np.testing.assert_allclose(loss, 4.0 * losses, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(grad_s, 4.0 * want_s, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(grad_t, 4.0 * want_t, rtol=1e-6, atol=1e-7)


def test_empty_inputs():
    loss = distillation_loss(np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float32))
    assert np.isnan(loss.item())
    s = lucid.tensor(np.zeros((2, 0), np.float32), requires_grad=True)
    distillation_loss(s, np.zeros((2, 0), np.float32), reduction="sum").backward()
    assert s.grad.shape == (2, 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_training_step_allocates_only_the_gradient(threads):
    student, teacher = logits((256, 4096), np.float32, 23), logits((256, 4096), np.float32, 24)
    t = lucid.tensor(teacher)

    def step():
        s = lucid.tensor(student, requires_grad=True)
        distillation_loss(s, t, 2.0).backward()
        return s.grad

    before = lucid.get_num_threads()
    lucid.set_num_threads(threads)
    try:
        # The copy lucid.tensor makes, the gradient, and under a mebibyte more.
        peak = traced_peak(step)
    finally:
        lucid.set_num_threads(before)
    assert peak < 2 * student.nbytes + MiB, f"{peak / MiB:.2f} MiB"


def test_strided_rows_allocate_row_buffers_not_copies():
    student = logits((128, 8192), np.float32, 25)[:, ::2]
    teacher = logits((128, 4096), np.float16, 26)
    peak = traced_peak(lambda: distillation_loss(student, teacher, 2.0))
    assert peak < MiB, f"{peak / MiB:.2f} MiB"


def test_runs_in_threads_with_small_stacks_and_releases_the_gil():
    # Row buffers live on the heap, so a 128 KiB stack is plenty; two Python
    # threads computing at once get the same answers as one after the other.
    import threading

    student, teacher = logits((32, 8192), np.float32, 27), logits((32, 8192), np.float32, 28)
    want = distillation_loss(student, teacher, 2.0, reduction="none").numpy()
    results = [None, None]

    def work(k):
        results[k] = distillation_loss(student, teacher, 2.0, reduction="none").numpy()

    previous = threading.stack_size(128 * 1024)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        threading.stack_size(previous)
    for result in results:
        np.testing.assert_array_equal(result, want)
