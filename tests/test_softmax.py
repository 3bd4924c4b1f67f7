"""log_softmax and softmax: values, stability, -inf rows, dtypes, gradients and argument errors."""
import numpy as np
import pytest

import lucid
from lucid.autograd import grad, gradcheck
from lucid.nn.functional.softmax import log_softmax, softmax


def log_softmax_reference(logits, axis):
    """float64 log-softmax computed independently, with log-sum-exp from numpy's logaddexp."""
    logits = np.asarray(logits, dtype=np.float64)
    return logits - np.logaddexp.reduce(logits, axis=axis, keepdims=True)


@pytest.fixture
def logits():
    return np.random.default_rng(11).normal(scale=3.0, size=(4, 5, 6))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_log_softmax_matches_a_float64_reference(logits, dim):
    result = log_softmax(lucid.tensor(logits, dtype=lucid.float64), dim)
    np.testing.assert_allclose(result.numpy(), log_softmax_reference(logits, dim), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim", [0, -1])
def test_softmax_matches_a_float64_reference_and_sums_to_one(logits, dim):
    result = softmax(lucid.tensor(logits, dtype=lucid.float64), dim).numpy()
    np.testing.assert_allclose(result, np.exp(log_softmax_reference(logits, dim)), rtol=1e-12)
    np.testing.assert_allclose(result.sum(axis=dim), 1.0, rtol=1e-12)


def test_float32_values_are_within_a_few_ulps(logits):
    result = log_softmax(lucid.tensor(logits, dtype=lucid.float32), -1)
    assert result.dtype == np.float32
    expected = log_softmax_reference(logits.astype(np.float32), -1)
    np.testing.assert_allclose(result.numpy(), expected, rtol=3e-7, atol=1e-6)


def test_huge_logits_neither_overflow_nor_underflow():
    result = log_softmax(lucid.tensor([[1000.0, 1001.0], [-1000.0, -1001.0]]), 1)
    np.testing.assert_allclose(result.numpy(), [[-1.3132617, -0.3132617], [-0.3132617, -1.3132617]], rtol=1e-6)


def test_a_row_of_all_minus_infinity_gives_nan_like_the_reference_framework():
    x = lucid.tensor([[-np.inf, -np.inf], [0.0, 0.0]])
    assert np.isnan(log_softmax(x, 1).numpy()[0]).all() and np.isnan(softmax(x, 1).numpy()[0]).all()
    np.testing.assert_allclose(softmax(x, 1).numpy()[1], [0.5, 0.5])


def test_all_minus_infinity_matches_the_reference_framework():
    torch = pytest.importorskip("torch")
    data = np.array([[-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0], [np.inf, 0.0, 1.0]], dtype=np.float32)
    # NaN in the same places (assert_allclose compares NaN as equal), the rest within rounding.
    expected_log = torch.log_softmax(torch.from_numpy(data), 1).numpy()
    np.testing.assert_allclose(log_softmax(data, 1).numpy(), expected_log, rtol=1e-6)
    expected = torch.softmax(torch.from_numpy(data), 1).numpy()
    np.testing.assert_allclose(softmax(data, 1).numpy(), expected, rtol=1e-6)


def test_a_single_minus_infinity_entry_gets_zero_probability():
    x = lucid.tensor([-np.inf, 0.0, 0.0])
    assert softmax(x, 0).tolist() == [0.0, 0.5, 0.5]
    assert log_softmax(x, 0).tolist()[0] == -np.inf


def test_float16_is_computed_in_float32_and_returned_as_float16(logits):
    x16 = logits.astype(np.float16)
    result = log_softmax(lucid.tensor(x16), -1)
    assert result.dtype == np.float16
    expected = log_softmax_reference(x16.astype(np.float32), -1).astype(np.float16)
    np.testing.assert_array_equal(result.numpy(), expected)


def test_float16_gradient_is_float16_and_close_to_float64():
    x = lucid.tensor([[0.5, -1.0, 2.0]], dtype=lucid.float16, requires_grad=True)
    (log_softmax(x, 1) * lucid.tensor([[1.0, 2.0, 3.0]], dtype=lucid.float16)).sum().backward()
    x64 = lucid.tensor([[0.5, -1.0, 2.0]], dtype=lucid.float64, requires_grad=True)
    (log_softmax(x64, 1) * lucid.tensor([[1.0, 2.0, 3.0]], dtype=lucid.float64)).sum().backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_allclose(x.grad.numpy(), x64.grad.numpy(), rtol=2e-3, atol=1e-3)


def test_array_likes_are_accepted():
    np.testing.assert_allclose(softmax([0.0, 0.0], 0).numpy(), [0.5, 0.5])
    assert softmax(np.zeros(2), 0).dtype == np.float64


def test_zero_dimensional_input_is_a_single_slice():
    assert softmax(lucid.tensor(3.0), 0).item() == 1.0 and log_softmax(lucid.tensor(3.0), -1).item() == 0.0


@pytest.mark.parametrize("function", [log_softmax, softmax])
def test_gradients_match_finite_differences(function, logits):
    x = lucid.tensor(logits[:2, :3, :4], dtype=lucid.float64, requires_grad=True)
    assert gradcheck(lambda t: function(t, 1), (x,))


@pytest.mark.parametrize("name", ["log_softmax", "softmax"])
def test_gradients_match_the_reference_framework(name, logits):
    torch = pytest.importorskip("torch")
    weights = np.random.default_rng(2).normal(size=logits.shape)
    x = lucid.tensor(logits, requires_grad=True)
    (getattr(lucid.nn.functional, name)(x, 2) * lucid.tensor(weights)).sum().backward()
    tx = torch.tensor(logits, requires_grad=True)
    (getattr(torch, name)(tx, 2) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_hessian_vector_product_through_log_softmax_matches_the_reference_framework(logits):
    torch = pytest.importorskip("torch")
    target, v = np.random.default_rng(4).dirichlet(np.ones(6), size=(4, 5)), logits[::-1].copy()

    x = lucid.tensor(logits, requires_grad=True)
    loss = -(lucid.tensor(target) * log_softmax(x, -1)).sum() + (softmax(x, 1) ** 2).sum()
    (g,) = grad(loss, x, create_graph=True)
    (hvp,) = grad((g * lucid.tensor(v)).sum(), x)

    tx = torch.tensor(logits, requires_grad=True)
    tloss = -(torch.tensor(target) * torch.log_softmax(tx, -1)).sum() + (torch.softmax(tx, 1) ** 2).sum()
    (tg,) = torch.autograd.grad(tloss, tx, create_graph=True)
    (thvp,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx)
    np.testing.assert_allclose(hvp.numpy(), thvp.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("function", [log_softmax, softmax])
def test_second_derivatives_match_finite_differences(function):
    x = lucid.tensor([[0.2, -0.4, 1.1], [2.0, 0.0, -1.0]], dtype=lucid.float64, requires_grad=True)

    def squared_gradient(t):
        (g,) = grad((function(t, 1) * lucid.tensor([1.0, 2.0, 3.0])).sum(), t, create_graph=True)
        return (g * g).sum()

    assert gradcheck(squared_gradient, (x,))


def test_grad_fn_names_the_operation():
    x = lucid.ones(2, requires_grad=True)
    assert repr(log_softmax(x, 0).grad_fn) == "<LogSoftmaxBackward>"
    assert repr(softmax(x, 0).grad_fn) == "<SoftmaxBackward>"


@pytest.mark.parametrize("function", [log_softmax, softmax])
def test_dim_out_of_range_raises_like_the_reference_framework(function):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 5\)"):
        function(lucid.zeros(2, 3), 5)


@pytest.mark.parametrize("function", [log_softmax, softmax])
def test_integer_input_raises_type_error(function):
    with pytest.raises(TypeError, match="floating point"):
        function(lucid.tensor([1, 2]), 0)


def test_non_numeric_input_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="x must be a Tensor or array-like of numbers, got str 'ab'"):
        softmax("ab", 0)
