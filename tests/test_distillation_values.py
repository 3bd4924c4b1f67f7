"""distillation_loss against the unfused composition evaluated in float64 (issue 14).

Values and both gradients, for every divergence, temperature, reduction, with
and without a mask, in float32 (1e-6 relative, absolute floor 1e-7) and
float64 (1e-12), checked against the numpy composition of
``distillation_reference`` and, when it is importable, the reference
framework's ``log_softmax``/``kl_div``/``backward``.
"""
import numpy as np
import pytest

import lucid
from distillation_reference import per_row, reduce, upstream
from lucid.nn.functional import distillation_loss

DIVERGENCES = ["kl", "reverse_kl", "jsd"]
TEMPERATURES = [0.5, 1.0, 4.0]
REDUCTIONS = ["batchmean", "mean", "sum", "none"]
TOLERANCES = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-15)}
SHAPE = (3, 4, 11)  # (batch, sequence, classes)


def logits(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return (3 * rng.standard_normal(shape)).astype(dtype)


def keep_mask(seed):
    keep = np.random.default_rng(seed).random(SHAPE[:-1]) < 0.6
    keep[0, 0] = True
    return keep


def run(student, teacher, temperature, reduction, divergence, keep, beta=0.3):
    """lucid's loss and both gradients for one call; the upstream gradient is 1 or all ones."""
    s = lucid.tensor(student, requires_grad=True)
    t = lucid.tensor(teacher, requires_grad=True)
    loss = distillation_loss(s, t, temperature, reduction=reduction, divergence=divergence,
                             beta=beta, mask=None if keep is None else lucid.tensor(keep))
    loss.sum().backward()
    return loss.detach().numpy(), s.grad.numpy(), t.grad.numpy()


def expected(student, teacher, temperature, reduction, divergence, keep, beta=0.3):
    losses, grad_s, grad_t = per_row(student, teacher, temperature, divergence, beta)
    factor = temperature ** 2
    weight = factor * upstream(losses, reduction, keep)[..., None]
    return factor * reduce(losses, reduction, keep), grad_s * weight, grad_t * weight


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_value_and_both_gradients_match_the_float64_composition(divergence, temperature,
                                                                 reduction, masked, dtype):
    student, teacher = logits(SHAPE, dtype, 1), logits(SHAPE, dtype, 2)
    keep = keep_mask(3) if masked else None
    got = run(student, teacher, temperature, reduction, divergence, keep)
    want = expected(student, teacher, temperature, reduction, divergence, keep)
    for name, g, w in zip(("loss", "d/d student", "d/d teacher"), got, want):
        assert g.dtype == dtype, name
        np.testing.assert_allclose(g, w, err_msg=name, **TOLERANCES[dtype])


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_masked_distributions_get_exactly_zero_gradient(divergence):
    student, teacher = logits(SHAPE, np.float32, 4), logits(SHAPE, np.float32, 5)
    keep = keep_mask(6)
    _, grad_s, grad_t = run(student, teacher, 2.0, "batchmean", divergence, keep)
    assert np.all(grad_s[~keep] == 0) and np.all(grad_t[~keep] == 0)
    assert np.all(np.any(grad_s[keep] != 0, axis=-1))


def test_scale_by_t2_false_divides_the_loss_and_gradient_by_t2():
    student, teacher = logits(SHAPE, np.float64, 7), logits(SHAPE, np.float64, 8)
    s = lucid.tensor(student, requires_grad=True)
    loss = distillation_loss(s, teacher, 4.0, scale_by_t2=False)
    loss.backward()
    losses, grad_s, _ = per_row(student, teacher, 4.0)
    np.testing.assert_allclose(loss.item(), losses.mean(), rtol=1e-12)
    np.testing.assert_allclose(s.grad.numpy(), grad_s / 12, rtol=1e-12, atol=1e-15)


def test_upstream_gradient_scales_the_student_gradient():
    # The forward computes the student's gradient for an upstream 1; another
    # upstream value must scale it.
    student, teacher = logits(SHAPE, np.float64, 9), logits(SHAPE, np.float64, 10)
    s = lucid.tensor(student, requires_grad=True)
    (distillation_loss(s, teacher, 2.0) * 3.0).backward()
    _, grad_s, _ = per_row(student, teacher, 2.0)
    np.testing.assert_allclose(s.grad.numpy(), 3.0 * 4.0 * grad_s / 12, rtol=1e-12, atol=1e-15)


def test_per_distribution_upstream_gradient_weights_each_row():
    student, teacher = logits(SHAPE, np.float64, 11), logits(SHAPE, np.float64, 12)
    weights = np.random.default_rng(13).random(SHAPE[:-1])
    s = lucid.tensor(student, requires_grad=True)
    (distillation_loss(s, teacher, 0.5, reduction="none") * lucid.tensor(weights)).sum().backward()
    _, grad_s, _ = per_row(student, teacher, 0.5)
    np.testing.assert_allclose(s.grad.numpy(), 0.25 * weights[..., None] * grad_s,
                               rtol=1e-12, atol=1e-15)


def test_a_second_backward_recomputes_the_same_gradient():
    student, teacher = logits(SHAPE, np.float32, 14), logits(SHAPE, np.float32, 15)
    s = lucid.tensor(student, requires_grad=True)
    loss = distillation_loss(s, teacher, 2.0, divergence="jsd")
    loss.backward(retain_graph=True)
    first = s.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(s.grad.numpy(), 2 * first, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_agrees_with_the_reference_framework_composition(divergence, temperature):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    student, teacher = logits(SHAPE, np.float64, 16), logits(SHAPE, np.float64, 17)
    keep = keep_mask(18)
    beta = 0.3
    st = torch.tensor(student, requires_grad=True)
    tt = torch.tensor(teacher, requires_grad=True)
    log_q = functional.log_softmax(st / temperature, dim=-1)
    log_p = functional.log_softmax(tt / temperature, dim=-1)
    if divergence == "kl":
        rows = functional.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)
    elif divergence == "reverse_kl":
        rows = functional.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1)
    else:
        log_m = torch.log(beta * log_p.exp() + (1 - beta) * log_q.exp())
        rows = (beta * functional.kl_div(log_m, log_p, reduction="none", log_target=True).sum(-1)
                + (1 - beta) * functional.kl_div(log_m, log_q, reduction="none",
                                                 log_target=True).sum(-1))
    keep_t = torch.tensor(keep)
    torch_loss = rows[keep_t].sum() / keep_t.sum() * temperature ** 2
    torch_loss.backward()
    got = run(student, teacher, temperature, "batchmean", divergence, keep, beta)
    for g, w in zip(got, (torch_loss.item(), st.grad.numpy(), tt.grad.numpy())):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_gradients_match_central_differences(divergence):
    student, teacher = logits((2, 5), np.float64, 19), logits((2, 5), np.float64, 20)

    def loss(s, t):
        return distillation_loss(s, t, 1.5, divergence=divergence, beta=0.4).item()

    s = lucid.tensor(student, requires_grad=True)
    t = lucid.tensor(teacher, requires_grad=True)
    distillation_loss(s, t, 1.5, divergence=divergence, beta=0.4).backward()
    h = 1e-6
    for array, grad, first in ((student, s.grad.numpy(), True), (teacher, t.grad.numpy(), False)):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            up, down = array.copy(), array.copy()
            up[index] += h
            down[index] -= h
            pair_up = (up, teacher) if first else (student, up)
            pair_down = (down, teacher) if first else (student, down)
            numeric[index] = (loss(*pair_up) - loss(*pair_down)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_identical_logits_give_zero():
    # Both KL directions are exactly 0 (the two normalisers cancel exactly);
    # the JSD's log m = log(beta p + (1 - beta) p) differs from log p by the
    # rounding of the exp that gave p (within 1e-11 for float32 inputs).
    student = logits(SHAPE, np.float32, 21)
    for divergence in DIVERGENCES:
        loss = distillation_loss(student, student.copy(), 3.0, reduction="none",
                                 divergence=divergence).numpy()
        if divergence == "jsd":
            assert np.all(np.abs(loss) < 1e-9)
        else:
            assert np.all(loss == 0), divergence


@pytest.mark.parametrize("reduction", ["batchmean", "none"])
@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_create_graph_gives_the_same_gradients_and_exact_second_derivatives(divergence,
                                                                            reduction):
    # Hessian-vector products through the loss, against central differences
    # of the fused first derivative; the class axis in the middle and a mask.
    rng = np.random.default_rng(22)
    student, teacher = logits((3, 6, 4), np.float64, 23), logits((3, 6, 4), np.float64, 24)
    keep = rng.random((3, 4)) < 0.7
    keep[0, 0] = True
    v = rng.standard_normal(student.shape)
    weights = rng.random((3, 4))

    def first(s_array, t_array, create_graph=False):
        s = lucid.tensor(s_array, requires_grad=True)
        t = lucid.tensor(t_array, requires_grad=True)
        loss = distillation_loss(s, t, 1.5, dim=1, reduction=reduction, divergence=divergence,
                                 beta=0.3, mask=lucid.tensor(keep))
        if reduction == "none":
            loss = (loss * lucid.tensor(weights)).sum()
        return s, t, lucid.autograd.grad(loss, [s, t], create_graph=create_graph)

    s, t, (grad_s, grad_t) = first(student, teacher, create_graph=True)
    _, _, (fused_s, fused_t) = first(student, teacher)
    np.testing.assert_allclose(grad_s.detach().numpy(), fused_s.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad_t.detach().numpy(), fused_t.numpy(), rtol=1e-12, atol=1e-15)
    hvp_s, hvp_t = lucid.autograd.grad((grad_s * lucid.tensor(v)).sum(), [s, t])
    h = 1e-5
    up = [g.numpy() for g in first(student + h * v, teacher)[2]]
    down = [g.numpy() for g in first(student - h * v, teacher)[2]]
    np.testing.assert_allclose(hvp_s.numpy(), (up[0] - down[0]) / (2 * h), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(hvp_t.numpy(), (up[1] - down[1]) / (2 * h), rtol=1e-5, atol=1e-8)
