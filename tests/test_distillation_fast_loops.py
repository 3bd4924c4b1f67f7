"""The distillation loss's AVX-512 float32 runs (distill_avx512.h) at their edges.

Rows whose exponentials need the clamp (-inf logits, spreads of thousands),
every tail length of a vector, and both gradients, against the float64
composition of ``distillation_reference``, on every SIMD level this CPU runs
(the lower levels run distill_runs.h's loops, so the levels also agree).
"""
import numpy as np
import pytest

import lucid
from distillation_reference import per_row
from lucid.nn.functional import distillation_loss

from conftest import SIMD_AVAILABLE, simd_at

F32 = dict(rtol=1e-6, atol=1e-7)


@pytest.fixture(params=SIMD_AVAILABLE)
def level(request):
    with simd_at(request.param):
        yield request.param


def logits(shape, seed, scale=2.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def loss_and_grads(student, teacher, temperature, divergence):
    s = lucid.tensor(student, requires_grad=True)
    t = lucid.tensor(teacher, requires_grad=True)
    loss = distillation_loss(s, t, temperature, reduction="none", divergence=divergence)
    loss.sum().backward()
    return loss.detach().numpy(), s.grad.numpy(), t.grad.numpy()


def check(student, teacher, temperature, divergence):
    loss, grad_s, grad_t = loss_and_grads(student, teacher, temperature, divergence)
    losses, want_s, want_t = per_row(student, teacher, temperature, divergence)
    factor = temperature ** 2
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(losses))
    np.testing.assert_allclose(loss, factor * losses, **F32)
    for got, want in ((grad_s, want_s), (grad_t, want_t)):
        # Where both probabilities underflow the float64 composition's JSD
        # gives 0 log(0/0) = NaN; lucid's 0 log 0 = 0 gives 0 there.
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], factor * want[finite], **F32)
        assert np.all(np.isnan(got[np.isnan(loss)]))


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl", "jsd"])
@pytest.mark.parametrize("cols", [1, 7, 8, 9, 15, 16, 17, 31, 33, 1000])
def test_every_tail_length(level, cols, divergence):
    check(logits((3, cols), 1), logits((3, cols), 2), 2.0, divergence)


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl", "jsd"])
def test_minus_infinity_logits_in_float32(level, divergence):
    student, teacher = logits((5, 40), 3), logits((5, 40), 4)
    teacher[0, 2] = student[0, 2] = -np.inf       # both rule a class out: adds 0
    teacher[1, 5:9] = -np.inf                     # the teacher alone
    student[2, 11] = -np.inf                      # the student alone
    teacher[3] = -np.inf                          # a whole row: NaN
    student[4, :] = -np.inf
    student[4, 1] = 0.0                           # a one-hot student
    check(student, teacher, 2.0, divergence)


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl", "jsd"])
def test_spreads_whose_exponentials_underflow(level, divergence):
    # Logits thousands apart: most x = s / T - max lie below -700, where the
    # fast exponential needs its clamp; the largest few decide the result.
    student, teacher = logits((4, 300), 5, scale=400.0), logits((4, 300), 6, scale=400.0)
    student[1] = teacher[1] + 1.0                 # the same distribution, shifted
    check(student, teacher, 1.0, divergence)


# The KL's student gradient on AVX-512 keeps both sides' exps as floats
# (distill_avx512.h, lucid_distill_fast_grad_split_f32). Its float error is
# bounded by |coef| (q + p), not by the gradient, so classes with a large
# |coef| q or |coef| p are computed in double. These rows make q and p
# cancel, where that matters.

def close_rows(rows, cols, seed, noise=1e-3, peak=0.0):
    teacher = logits((rows, cols), seed)
    teacher[:, 0] += peak
    student = teacher + noise * np.random.default_rng(seed + 1).standard_normal((rows, cols))
    return student.astype(np.float32), teacher


def student_grad(student, teacher, temperature, reduction, upstream=None, mask=None):
    s = lucid.tensor(student, requires_grad=True)
    loss = distillation_loss(s, lucid.from_numpy(teacher), temperature, reduction=reduction)
    (loss if upstream is None else (loss * lucid.from_numpy(upstream)).sum()).backward()
    return s.grad.numpy()


def test_peaked_close_rows_with_a_large_factor(level):
    # reduction="sum", T = 4: the factor is T**2 / T = 4, and the dominant
    # class has q and p near 1: its float difference would be off by ~1e-6.
    student, teacher = close_rows(6, 100, 7, peak=20.0)
    want = 16.0 * per_row(student, teacher, 4.0)[1]
    np.testing.assert_allclose(student_grad(student, teacher, 4.0, "sum"), want, **F32)


def test_many_classes_under_batchmean(level):
    # A small factor (T / rows): every class takes the float loop; all tail lengths of 16.
    for cols in (1000, 1001, 1007, 1015):
        student, teacher = close_rows(64, cols, cols)
        want = 4.0 * per_row(student, teacher, 2.0)[1] / 64
        np.testing.assert_allclose(student_grad(student, teacher, 2.0, "batchmean"), want, **F32)


def assert_close_at_scale(got, want, scale):
    """Within 1e-6 relative and 1e-7 times the upstream gradient ``scale`` (per row)."""
    bound = 1e-6 * np.abs(want) + 1e-7 * np.abs(scale)
    worst = np.max(np.abs(got - want) - bound)
    assert worst <= 0, f"off by {worst:.3g} beyond the bound"


@pytest.mark.parametrize("upstream", [1e7, -3e6, 600.0])
def test_large_upstream_gradients(level, upstream):
    # The batchmean loss (coef T / rows = 1 / 256, so every class takes the
    # float loop) times a large factor: the error scales with it, as any
    # float gradient's does (the double loop's too), and stays inside 1e-7 |u|.
    student, teacher = close_rows(256, 1000, 11)
    s = lucid.tensor(student, requires_grad=True)
    loss = distillation_loss(s, lucid.from_numpy(teacher), 1.0)
    (loss * upstream).backward()
    want = per_row(student, teacher, 1.0)[1] * upstream / 256
    assert_close_at_scale(s.grad.numpy(), want, upstream)


def test_large_per_row_upstream_gradients(level):
    # reduction="none" with per-row weights, one of them large.
    student, teacher = close_rows(64, 1000, 12)
    weights = np.full(64, 1e-3)
    weights[5] = -2e6
    s = lucid.tensor(student, requires_grad=True)
    loss = distillation_loss(s, lucid.from_numpy(teacher), 1.0, reduction="none")
    (loss * lucid.from_numpy(weights)).sum().backward()
    want = per_row(student, teacher, 1.0)[1] * weights[:, None]
    assert_close_at_scale(s.grad.numpy(), want, weights[:, None])


def test_tiny_temperature_factors_beyond_float32(level):
    # scale_by_t2=False and T = 1e-31: the factor 1 / T is past what the
    # float loop takes (its products could overflow), so whole rows are double.
    student, teacher = close_rows(4, 40, 13, noise=0.3)
    student, teacher = student * np.float32(1e-31), teacher * np.float32(1e-31)
    s = lucid.tensor(student, requires_grad=True)
    distillation_loss(s, lucid.from_numpy(teacher), 1e-31, reduction="sum",
                      scale_by_t2=False).backward()
    want = per_row(student, teacher, 1e-31)[1]
    np.testing.assert_allclose(s.grad.numpy(), want, rtol=1e-6)
