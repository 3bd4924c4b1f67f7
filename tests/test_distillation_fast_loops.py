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


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl"])
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
