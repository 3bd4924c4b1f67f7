"""Tensor operations: values against float64 numpy, broadcasting and result dtypes."""
import operator

import numpy as np
import pytest

import lucid


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.mark.parametrize(
    "op",
    [operator.add, operator.sub, operator.mul, operator.truediv],
    ids=["add", "sub", "mul", "div"],
)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 2))])
def test_binary_arithmetic_broadcasts_like_numpy(rng, op, shapes):
    a, b = rng.normal(size=shapes[0]), rng.normal(size=shapes[1]) + 3.0
    result = op(lucid.tensor(a), lucid.tensor(b))
    np.testing.assert_allclose(result.numpy(), op(a, b), rtol=1e-6)
    assert result.shape == np.broadcast_shapes(*shapes)


def test_power_matches_numpy(rng):
    a, b = rng.uniform(0.5, 2.0, size=(3, 2)), rng.normal(size=(2,))
    np.testing.assert_allclose((lucid.tensor(a) ** lucid.tensor(b)).numpy(), a**b, rtol=1e-6)
    np.testing.assert_allclose((2.0 ** lucid.tensor(b)).numpy(), 2.0**b, rtol=1e-6)


@pytest.mark.parametrize(
    "op, expected",
    [
        (lambda x: x + 1, [2.0, 3.0]),
        (lambda x: 1 + x, [2.0, 3.0]),
        (lambda x: 1 - x, [0.0, -1.0]),
        (lambda x: 2 * x, [2.0, 4.0]),
        (lambda x: 1 / x, [1.0, 0.5]),
        (lambda x: x**2, [1.0, 4.0]),
        (lambda x: -x, [-1.0, -2.0]),
    ],
)
def test_scalar_operands_and_reflected_forms(op, expected):
    assert op(lucid.tensor([1.0, 2.0])).tolist() == expected


def test_numpy_array_on_the_left_gives_a_tensor():
    result = np.array([1.0, 2.0]) + lucid.tensor([1.0, 1.0], requires_grad=True)
    assert isinstance(result, lucid.Tensor) and result.requires_grad


@pytest.mark.parametrize(
    "dtype, scalar, expected",
    [
        (np.float16, 2.5, np.float16),
        (np.float32, 2.5, np.float32),
        (np.float64, 2, np.float64),
        (np.int64, 2.5, np.float32),
        (np.int32, 2, np.int32),
        (np.bool_, 1, np.int64),
    ],
)
def test_python_scalars_are_weak_operands(dtype, scalar, expected):
    assert (lucid.tensor(np.ones(2, dtype)) * scalar).dtype == expected


def test_tensor_operands_promote_as_numpy_does():
    result = lucid.ones(2, dtype=lucid.float32) + lucid.ones(2, dtype=lucid.float64)
    assert result.dtype == np.float64


def test_integer_division_is_true_division_in_float32():
    result = lucid.tensor([1, 2]) / lucid.tensor([2, 2])
    assert result.dtype == np.float32 and result.tolist() == [0.5, 1.0]


@pytest.mark.parametrize(
    "shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))]
)
def test_matmul_matches_numpy(rng, shapes):
    a, b = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    np.testing.assert_allclose((lucid.tensor(a) @ lucid.tensor(b)).numpy(), a @ b, rtol=1e-5, atol=1e-6)


def test_matmul_of_a_zero_dimensional_operand_raises():
    with pytest.raises(ValueError, match="at least 1-d"):
        lucid.ones(2) @ lucid.tensor(2.0)


def test_exp_and_log_match_numpy(rng):
    a = rng.uniform(0.1, 3.0, size=(4, 3))
    np.testing.assert_allclose(lucid.tensor(a).exp().numpy(), np.exp(a), rtol=1e-6)
    np.testing.assert_allclose(lucid.tensor(a).log().numpy(), np.log(a), rtol=1e-6)


def test_log_of_zero_and_negative_follows_ieee_without_warning():
    with np.errstate(all="raise"):
        assert lucid.tensor([0.0]).log().item() == -np.inf
        assert np.isnan(lucid.tensor([-1.0]).log().item())


def test_exp_of_an_integer_tensor_raises():
    with pytest.raises(TypeError, match="floating point"):
        lucid.tensor([1, 2]).exp()


@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_and_mean_match_numpy(rng, dim, keepdim):
    a = rng.normal(size=(2, 3, 4))
    t = lucid.tensor(a)
    axis = dim if dim is not None else None
    expected_sum, expected_mean = a.sum(axis=axis, keepdims=keepdim), a.mean(axis=axis, keepdims=keepdim)
    np.testing.assert_allclose(t.sum(dim=dim, keepdim=keepdim).numpy(), expected_sum, rtol=1e-6)
    np.testing.assert_allclose(t.mean(dim=dim, keepdim=keepdim).numpy(), expected_mean, rtol=1e-6)


def test_float16_sum_and_mean_accumulate_in_float32():
    t = lucid.full((5000, 3), 0.1, dtype=lucid.float16)
    # Down the rows a float16 accumulator stalls at 256 (256 + 0.1 rounds back to 256).
    assert t.sum(dim=0).tolist() == [500.0] * 3 and t.sum(dim=0).dtype == np.float16
    assert t.mean(dim=0).tolist() == pytest.approx([0.1] * 3, rel=1e-3)


def test_sum_of_bools_counts_in_int64():
    s = lucid.tensor([True, True, False]).sum()
    assert s.dtype == np.int64 and s.item() == 2


def test_mean_of_an_empty_tensor_is_nan():
    assert np.isnan(lucid.zeros(0).mean().item())


def test_mean_of_an_integer_tensor_raises():
    with pytest.raises(TypeError, match="floating point"):
        lucid.tensor([1, 2]).mean()


def test_reduction_dim_out_of_range_raises_index_error():
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        lucid.zeros(2, 2).sum(dim=2)


def test_max_without_dim_is_the_largest_element():
    assert lucid.tensor([[1.0, 5.0], [7.0, 2.0]]).max().item() == 7.0


def test_max_with_dim_returns_values_and_indices_like_numpy(rng):
    a = rng.normal(size=(3, 4, 5))
    values, indices = lucid.tensor(a).max(dim=1)
    np.testing.assert_array_equal(values.numpy(), a.max(axis=1))
    np.testing.assert_array_equal(indices.numpy(), a.argmax(axis=1))
    assert indices.dtype == np.int64


def test_max_with_keepdim_keeps_the_reduced_dimension():
    result = lucid.zeros(2, 3).max(dim=1, keepdim=True)
    assert result.values.shape == result.indices.shape == (2, 1)


def test_max_propagates_nan():
    assert np.isnan(lucid.tensor([1.0, np.nan, 3.0]).max().item())
    assert lucid.tensor([[1.0, np.nan, 3.0]]).max(dim=1).indices.tolist() == [1]


def test_shape_operations_match_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = lucid.tensor(a)
    np.testing.assert_array_equal(t.reshape(4, -1).numpy(), a.reshape(4, -1))
    np.testing.assert_array_equal(t.view((6, 4)).numpy(), a.reshape(6, 4))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.transpose(2, 1, 0))
    np.testing.assert_array_equal(t.permute(1, 2, 0).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.unsqueeze(1).numpy(), a[:, None])
    np.testing.assert_array_equal(t.unsqueeze(-1).squeeze(-1).numpy(), a)
    np.testing.assert_array_equal(t.T.numpy(), a.T)


def test_squeeze_leaves_dimensions_that_are_not_size_one():
    assert lucid.zeros(1, 3).squeeze(1).shape == (1, 3)


def test_view_of_a_transposed_tensor_raises_like_the_reference_framework():
    with pytest.raises(RuntimeError, match=r"Use \.reshape"):
        lucid.zeros(2, 3).T.view(6)


def test_view_shares_memory_with_its_base():
    base = lucid.zeros(4)
    base.view(2, 2)[1, 1] = 3.0
    assert base.tolist() == [0.0, 0.0, 0.0, 3.0]


def test_permute_with_a_repeated_dimension_raises():
    with pytest.raises(RuntimeError, match="appears multiple times"):
        lucid.zeros(2, 3).permute(0, 0)


@pytest.mark.parametrize(
    "index",
    [
        1,
        -1,
        slice(None, None, -1),
        (Ellipsis, 0),
        (None, 1),
        ([0, 2, 2],),
        (slice(None), [1, 0]),
        (np.array([True, False, True]),),
    ],
    ids=["int", "negative", "reversed", "ellipsis", "newaxis", "int-array", "mixed", "bool-mask"],
)
def test_indexing_matches_numpy(index):
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(lucid.tensor(a)[index].numpy(), a[index])


def test_indexing_with_a_bool_tensor_selects_elements():
    t = lucid.tensor([1.0, -2.0, 3.0])
    assert t[t > 0].tolist() == [1.0, 3.0]


def test_indexing_out_of_range_raises_index_error():
    with pytest.raises(IndexError):
        lucid.zeros(3)[3]


@pytest.mark.parametrize(
    "op, expected",
    [
        (operator.eq, [False, True, False]),
        (operator.ne, [True, False, True]),
        (operator.lt, [True, False, False]),
        (operator.le, [True, True, False]),
        (operator.gt, [False, False, True]),
        (operator.ge, [False, True, True]),
    ],
)
def test_comparisons_give_bool_tensors_without_grad(op, expected):
    result = op(lucid.tensor([1.0, 2.0, 3.0], requires_grad=True), 2)
    assert result.dtype == np.bool_ and result.tolist() == expected and not result.requires_grad


def test_comparison_with_none_is_false_not_an_error():
    assert (lucid.ones(2) == None) is False  # noqa: E711 - the point of the test


def test_an_unsupported_operand_raises_type_error():
    with pytest.raises(TypeError):
        lucid.ones(2) + "a"


def test_to_converts_dtype_and_returns_self_when_unchanged():
    t = lucid.tensor([1.5, 2.5])
    assert t.to(lucid.float64).dtype == np.float64
    assert t.double().dtype == np.float64 and t.double().float().dtype == np.float32
    assert t.to("float32") is t
    assert t.to(lucid.int64).tolist() == [1, 2]


def test_clone_copies_memory():
    t = lucid.ones(2)
    c = t.clone()
    c[0] = 5.0
    assert t.tolist() == [1.0, 1.0]


def test_detach_shares_memory_and_drops_grad():
    t = lucid.ones(2, requires_grad=True)
    d = t.detach()
    assert not d.requires_grad and d.numpy() is t._data


def test_metadata_of_a_tensor():
    t = lucid.zeros(2, 3, 4)
    assert (t.shape, t.ndim, t.size(), t.size(1), t.size(-1)) == ((2, 3, 4), 3, (2, 3, 4), 3, 4)
    assert (t.numel(), len(t)) == (24, 2)


def test_item_and_python_conversions():
    t = lucid.tensor([2.5])
    assert t.item() == 2.5 and float(t) == 2.5 and int(lucid.tensor(3)) == 3 and bool(lucid.tensor([1]))
    assert list(range(10))[lucid.tensor(2)] == 2


def test_item_of_several_elements_raises():
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        lucid.zeros(2).item()


def test_truth_value_of_several_elements_is_ambiguous():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(lucid.zeros(2))


def test_len_and_iteration_of_a_zero_dimensional_tensor_raise():
    with pytest.raises(TypeError, match="0-d"):
        len(lucid.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(lucid.tensor(1.0))


def test_iteration_yields_rows():
    assert [row.tolist() for row in lucid.tensor([[1, 2], [3, 4]])] == [[1, 2], [3, 4]]


def test_numpy_of_a_tensor_that_requires_grad_raises():
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        lucid.ones(2, requires_grad=True).numpy()


def test_array_protocol_gives_the_values():
    np.testing.assert_array_equal(np.asarray(lucid.tensor([1.0, 2.0])), [1.0, 2.0])
    assert np.asarray(lucid.tensor([1.0]), dtype=np.float64).dtype == np.float64
