"""Gradients of every differentiable op: central differences, the reference framework, shapes and dtypes."""
import numpy as np
import pytest

import lucid
from lucid.autograd import gradcheck
from lucid.ops.broadcasting import unbroadcast


def leaf(rng, shape, low=-1.0, high=1.0):
    return lucid.tensor(rng.uniform(low, high, size=shape), dtype=lucid.float64, requires_grad=True)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize(
    "shapes", [((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 3))], ids=["same", "ndim", "size1"]
)
def test_binary_op_gradients_match_finite_differences(rng, name, shapes):
    a, b = leaf(rng, shapes[0], 0.5, 2.0), leaf(rng, shapes[1], 0.5, 2.0)
    assert gradcheck(BINARY[name], (a, b))


@pytest.mark.parametrize(
    "shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (2, 4, 2))]
)
def test_matmul_gradients_match_finite_differences(rng, shapes):
    assert gradcheck(lambda a, b: a @ b, (leaf(rng, shapes[0]), leaf(rng, shapes[1])))


UNARY = {
    "neg": lambda x: -x,
    "exp": lambda x: x.exp(),
    "log": lambda x: x.log(),
    "sum": lambda x: x.sum(),
    "sum-dim": lambda x: x.sum(dim=1),
    "sum-keepdim": lambda x: x.sum(dim=(0, 2), keepdim=True),
    "mean": lambda x: x.mean(dim=-1),
    "max": lambda x: x.max(),
    "max-dim": lambda x: x.max(dim=1).values,
    "reshape": lambda x: x.reshape(4, -1),
    "view": lambda x: x.view(-1),
    "transpose": lambda x: x.transpose(0, 2),
    "permute": lambda x: x.permute(1, 2, 0),
    "unsqueeze-squeeze": lambda x: x.unsqueeze(1).squeeze(),
    "T": lambda x: x.T,
    "index-basic": lambda x: x[1, :, ::-2],
    "index-repeated": lambda x: x[:, [0, 0, 2]],
    "index-mask": lambda x: x[x > 1.0],
    "clone": lambda x: x.clone(),
    "pow-scalar": lambda x: x**3,
    "scalar-pow": lambda x: 2.0**x,
    "rdiv": lambda x: 1.0 / x,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_op_gradients_match_finite_differences(rng, name):
    assert gradcheck(UNARY[name], (leaf(rng, (2, 3, 2), 0.5, 2.0),))


def test_composite_gradient_matches_the_reference_framework(rng):
    torch = pytest.importorskip("torch")
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4,))

    def f(module, x, y):
        return ((x * y).exp() / (1.0 + x**2) - (x @ y).reshape(3, 1)).mean()

    x, y = lucid.tensor(a, requires_grad=True), lucid.tensor(b, requires_grad=True)
    f(lucid, x, y).backward()
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    f(torch, tx, ty).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10)


def test_max_gradient_is_shared_between_ties_like_the_reference_framework():
    x = lucid.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_max_with_dim_sends_the_gradient_to_the_first_maximum():
    x = lucid.tensor([[3.0, 3.0, 1.0]], requires_grad=True)
    x.max(dim=1).values.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0]]


def test_pow_gradients_at_zero_are_finite_like_the_reference_framework():
    x = lucid.tensor([0.0, 2.0], requires_grad=True)
    e = lucid.tensor([0.0, 2.0], requires_grad=True)
    (x**e).sum().backward()
    assert x.grad.tolist() == [0.0, 4.0]
    assert e.grad.tolist() == pytest.approx([0.0, 4.0 * np.log(2.0)])


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 4), (3, 1)), ((), (2, 2)), ((5, 1, 1), (1, 2, 3))],
)
def test_broadcast_gradients_are_summed_to_each_input_shape(shape_a, shape_b):
    a = lucid.ones(*shape_a, requires_grad=True) if shape_a else lucid.tensor(1.0, requires_grad=True)
    b = lucid.ones(*shape_b, requires_grad=True)
    (a * b).sum().backward()
    broadcast_size = int(np.prod(np.broadcast_shapes(shape_a, shape_b)))
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    # Every input element was broadcast to size / own-size positions.
    np.testing.assert_array_equal(a.grad.numpy(), np.full(shape_a, broadcast_size / max(a.numel(), 1)))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(shape_b, broadcast_size / b.numel()))


def test_unbroadcast_sums_leading_axes_then_size_one_axes():
    grad = lucid.tensor(np.arange(24.0).reshape(2, 3, 4))
    values = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(grad, (3, 1)).numpy(), values.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(unbroadcast(grad, (4,)).numpy(), values.sum(axis=(0, 1)))
    assert unbroadcast(grad, (2, 3, 4)) is grad


def test_unbroadcast_refuses_a_shape_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"cannot be summed to shape \(2,\)"):
        unbroadcast(lucid.ones(3), (2,))


def test_unbroadcast_is_differentiable(rng):
    assert gradcheck(lambda g: unbroadcast(g, (3, 1)) ** 2, (leaf(rng, (2, 3, 4)),))


@pytest.mark.parametrize("dtype", [lucid.float16, lucid.float32, lucid.float64])
def test_each_gradient_has_its_inputs_dtype(dtype):
    x = lucid.ones(3, dtype=dtype, requires_grad=True)
    w = lucid.ones(3, dtype=lucid.float64, requires_grad=True)
    (x * w).sum().backward()
    assert x.grad.dtype == dtype and w.grad.dtype == np.float64


def test_to_is_differentiable_and_casts_the_gradient_back():
    x = lucid.tensor([0.5, 1.5], dtype=lucid.float16, requires_grad=True)
    y = x.to(lucid.float64)
    (y * y).sum().backward()
    assert repr(y.grad_fn) == "<ToCopyBackward>"
    assert x.grad.dtype == np.float16 and x.grad.tolist() == [1.0, 3.0]


def test_in_place_setitem_gradient_matches_finite_differences(rng):
    def f(x, v):
        y = x * 1.0
        y[0, 1:] = v
        return y * y

    assert gradcheck(f, (leaf(rng, (2, 3)), leaf(rng, (2,))))
