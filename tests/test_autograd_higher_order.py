"""autograd.grad, create_graph (second derivatives, Hessian-vector products) and gradcheck itself."""
import numpy as np
import pytest

import lucid
from lucid.autograd import Function, GradcheckError, grad, gradcheck


def test_grad_returns_gradients_without_touching_dot_grad():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (g,) = grad((x**2).sum(), x)
    assert g.tolist() == [2.0, 4.0] and x.grad is None


def test_grad_with_respect_to_an_intermediate_tensor():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    gh, gx = grad(y, (h, x))
    assert gh.tolist() == [6.0, 12.0] and gx.tolist() == [18.0, 36.0]


def test_grad_of_an_unused_input_raises_unless_allowed():
    x, unused = lucid.ones(2, requires_grad=True), lucid.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        grad((x * 2).sum(), (x, unused), retain_graph=True)
    assert grad((x * 2).sum(), (x, unused), allow_unused=True)[1] is None


def test_grad_of_an_input_that_does_not_require_grad_raises():
    x = lucid.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad((x * 2).sum(), lucid.ones(2))


def test_grad_with_grad_outputs_for_a_non_scalar_output():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (g,) = grad(x * x, x, grad_outputs=lucid.tensor([3.0, 1.0]))
    assert g.tolist() == [6.0, 4.0]


def test_grad_frees_the_graph_unless_retained():
    x = lucid.ones(2, requires_grad=True)
    y = (x * x).sum()
    grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        grad(y, x)


def test_grad_skips_the_parts_of_the_graph_that_do_not_lead_to_the_inputs():
    x, other = lucid.ones(2, requires_grad=True), lucid.ones(2, requires_grad=True)
    branch = other.exp()
    y = (x * 2).sum() + branch.sum()
    with lucid.no_grad():
        other.add_(1)  # would make the branch's backward fail if it ran
    assert grad(y, x)[0].tolist() == [2.0, 2.0]


def test_create_graph_gives_second_derivatives():
    x = lucid.tensor([0.5, 2.0], dtype=lucid.float64, requires_grad=True)
    (g,) = grad((x**3).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * np.array([0.5, 2.0]))


def test_backward_with_create_graph_leaves_a_differentiable_grad():
    x = lucid.tensor(3.0, dtype=lucid.float64, requires_grad=True)
    (x.exp() * x).backward(create_graph=True)
    first = x.grad
    assert first.requires_grad
    x.grad = None
    first.backward()
    assert x.grad.item() == pytest.approx(np.exp(3.0) * (3.0 + 2.0))  # (x e^x)'' = e^x (x + 2)


def test_without_create_graph_the_gradient_does_not_require_grad():
    x = lucid.ones(2, requires_grad=True)
    (g,) = grad((x * x).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


def test_hessian_vector_product_matches_the_reference_framework():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, w, v = rng.normal(size=(4, 3)), rng.normal(size=(3,)), rng.normal(size=(3,))

    def loss(x, weights):
        z = x @ weights
        return (z.exp() / (1.0 + z * z)).sum() + (weights**4).mean()

    weights = lucid.tensor(w, requires_grad=True)
    (g,) = grad(loss(lucid.tensor(a), weights), weights, create_graph=True)
    (hvp,) = grad((g * lucid.tensor(v)).sum(), weights)

    tw = torch.tensor(w, requires_grad=True)
    (tg,) = torch.autograd.grad(loss(torch.tensor(a), tw), tw, create_graph=True)
    (thvp,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tw)
    np.testing.assert_allclose(hvp.numpy(), thvp.numpy(), rtol=1e-10)


def test_second_derivatives_of_every_op_pass_gradcheck():
    rng = np.random.default_rng(5)
    x = lucid.tensor(rng.uniform(0.5, 2.0, size=(2, 3)), dtype=lucid.float64, requires_grad=True)
    w = lucid.tensor(rng.uniform(0.5, 2.0, size=(3,)), dtype=lucid.float64, requires_grad=True)

    def gradient_norm(x, w):
        y = ((x * w) ** 1.5 / (x + w)).exp().log().sum(dim=1).max() + (x @ w).mean() + x[:, [0, 0]].sum()
        gx, gw = grad(y, (x, w), create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()

    assert gradcheck(gradient_norm, (x, w))


def test_gradcheck_reports_a_wrong_vjp():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x._data**2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x  # should be 2 * x

    x = lucid.tensor([1.0, 2.0], dtype=lucid.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(WrongSquare.apply, (x,))
    assert gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False


def test_gradcheck_works_in_float64_whatever_the_input_dtype():
    x = lucid.tensor([0.3, 0.7], requires_grad=True)  # float32
    assert gradcheck(lambda t: (t.exp() * t).sum(), (x,), atol=1e-7, rtol=1e-7)


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda t: t * 2, (lucid.ones(2),))
