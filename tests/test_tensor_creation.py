"""Creating tensors: dtype rules, copying versus sharing memory, and what is refused."""
import numpy as np
import pytest

import lucid


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([[1, 2], [3, 4]], np.int64),
        (3, np.int64),
        (True, np.bool_),
        ([True, False], np.bool_),
        ([1, 2.5], np.float32),
        (np.zeros(2, np.float64), np.float64),
        (np.zeros(2, np.float16), np.float16),
        (np.zeros(2, np.int32), np.int32),
        (np.float64(1.0), np.float64),
    ],
)
def test_tensor_infers_the_reference_frameworks_default_dtypes(data, dtype):
    assert lucid.tensor(data).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", [lucid.float64, np.float64, "float64"])
def test_dtype_may_be_given_as_lucid_numpy_or_string(dtype):
    assert lucid.tensor([1, 2], dtype=dtype).dtype == np.float64


def test_lucid_dtypes_are_numpy_dtypes():
    assert [lucid.float16, lucid.float32, lucid.float64, lucid.int32, lucid.int64, lucid.bool] == [
        np.dtype(name) for name in ("float16", "float32", "float64", "int32", "int64", "bool")
    ]


def test_tensor_copies_numpy_data():
    array = np.arange(3.0)
    t = lucid.tensor(array)
    array[0] = 100.0
    assert t.tolist() == [0.0, 1.0, 2.0]


def test_tensor_of_a_tensor_copies_values_but_not_the_graph():
    source = lucid.ones(2, requires_grad=True) * 2
    copy = lucid.tensor(source)
    assert copy.is_leaf and not copy.requires_grad
    assert copy.numpy() is not source._data
    assert copy.tolist() == [2.0, 2.0]


def test_from_numpy_shares_memory_both_ways():
    array = np.zeros(3)
    t = lucid.from_numpy(array)
    array[0] = 1.0
    t[1] = 2.0
    assert t.tolist() == [1.0, 2.0, 0.0]
    assert array.tolist() == [1.0, 2.0, 0.0]


def test_from_numpy_refuses_lists():
    with pytest.raises(TypeError, match="numpy.ndarray, got list"):
        lucid.from_numpy([1.0])


def test_requires_grad_on_an_integer_tensor_raises():
    with pytest.raises(RuntimeError, match="only floating point tensors can require gradients"):
        lucid.tensor([1, 2], requires_grad=True)


def test_requires_grad_true_makes_a_leaf():
    t = lucid.tensor([1.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a,
        lambda a: a[:, ::-2],
        lambda a: a.T,
        lambda a: np.broadcast_to(a[:1], (4, 6)),
        lambda a: a.astype(np.float16),
    ],
    ids=["contiguous", "negative-strides", "transposed", "zero-strides", "float16"],
)
def test_as_tensor_wraps_any_layout_without_copy_and_keeps_dtype(make):
    view = make(np.arange(24.0).reshape(4, 6))
    t = lucid.as_tensor(view)
    assert t.numpy() is view
    assert t.dtype == view.dtype


def test_as_tensor_reads_a_read_only_memmap_in_place(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.arange(5.0))
    mapped = np.load(path, mmap_mode="r")
    t = lucid.as_tensor(mapped)
    assert t.numpy() is mapped
    assert t.sum().item() == 10.0


def test_as_tensor_returns_a_tensor_as_is():
    t = lucid.ones(2)
    assert lucid.as_tensor(t) is t


def test_as_tensor_makes_numpy_scalars_zero_dimensional():
    t = lucid.as_tensor(np.float64(2.5))
    assert t.shape == () and t.dtype == np.float64


def test_as_tensor_follows_tensor_rules_for_python_data():
    assert lucid.as_tensor(0.5).dtype == np.float32
    assert lucid.as_tensor([[1, 2]]).dtype == np.int64


@pytest.mark.parametrize(
    "bad, shown",
    [
        (None, "NoneType None"),
        ("abc", "str 'abc'"),
        (b"ab", "bytes b'ab'"),
        ({"a": 1}, "dict {'a': 1}"),
        (object(), "got object <object"),
        ([[1, 2], [3]], "list [[1, 2], [3]]"),
        (np.array(["a"], dtype=object), "an array of dtype object"),
        (np.zeros(2, dtype=np.complex128), "an array of dtype complex128"),
    ],
)
def test_as_tensor_names_a_non_numeric_argument(bad, shown):
    with pytest.raises(TypeError, match="target must be a Tensor or array-like of numbers, got") as info:
        lucid.as_tensor(bad, name="target")
    assert shown in str(info.value)


@pytest.mark.parametrize("make", [lucid.zeros, lucid.ones])
def test_filled_tensors_accept_sizes_as_arguments_or_tuple(make):
    assert make(2, 3).shape == make((2, 3)).shape == (2, 3)
    assert make(2).dtype == np.float32


def test_zeros_and_ones_hold_their_values():
    assert lucid.zeros(2, 2).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert lucid.ones(3, dtype=lucid.int32).tolist() == [1, 1, 1]


@pytest.mark.parametrize("value, dtype", [(7, np.int64), (0.5, np.float32), (True, np.bool_)])
def test_full_takes_its_dtype_from_the_fill_value(value, dtype):
    t = lucid.full((2, 2), value)
    assert t.dtype == dtype and t.tolist() == [[value, value], [value, value]]


def test_like_functions_copy_shape_and_dtype():
    source = lucid.tensor(np.zeros((2, 3), np.float64))
    assert lucid.zeros_like(source).dtype == np.float64
    assert lucid.ones_like(source).tolist() == np.ones((2, 3)).tolist()
    assert lucid.ones_like(source, dtype=lucid.float16).dtype == np.float16


def test_like_functions_can_make_a_leaf_that_requires_grad():
    assert lucid.zeros_like(lucid.ones(2), requires_grad=True).requires_grad


def test_manual_seed_makes_random_tensors_reproducible():
    lucid.manual_seed(123)
    first = (lucid.randn(4).tolist(), lucid.rand(4).tolist())
    lucid.manual_seed(123)
    assert (lucid.randn(4).tolist(), lucid.rand(4).tolist()) == first


def test_randn_has_standard_normal_moments():
    lucid.manual_seed(0)
    samples = lucid.randn(200_000, dtype=lucid.float64).numpy()
    assert abs(samples.mean()) < 0.01 and abs(samples.std() - 1) < 0.01


def test_rand_lies_in_the_unit_interval():
    lucid.manual_seed(0)
    samples = lucid.rand(10_000).numpy()
    assert samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() < 1 and abs(samples.mean() - 0.5) < 0.02


@pytest.mark.parametrize(
    "args, expected, dtype",
    [
        ((4,), [0, 1, 2, 3], np.int64),
        ((1, 4), [1, 2, 3], np.int64),
        ((0, 1, 0.25), [0.0, 0.25, 0.5, 0.75], np.float32),
        ((3, 0, -1), [3, 2, 1], np.int64),
    ],
)
def test_arange_values_and_dtype(args, expected, dtype):
    t = lucid.arange(*args)
    assert t.tolist() == expected and t.dtype == dtype


def test_an_unknown_dtype_is_refused():
    with pytest.raises(TypeError, match="dtype"):
        lucid.zeros(2, dtype="complex64")


@pytest.mark.parametrize("data, shown", [("abc", "str"), ([1.0], "list"), (1.0, "float"), (lucid.ones(1), "Tensor")])
def test_the_constructor_wraps_only_numpy_arrays(data, shown):
    with pytest.raises(TypeError, match=f"wraps a numpy.ndarray, got {shown};.*lucid.as_tensor"):
        lucid.Tensor(data)


@pytest.mark.parametrize("dtype", ["<U3", object, np.complex128])
def test_the_constructor_refuses_arrays_of_anything_but_bools_and_real_numbers(dtype):
    with pytest.raises(TypeError, match=f"got an array of dtype {np.dtype(dtype)}"):
        lucid.Tensor(np.zeros(2, dtype=dtype))


def test_a_requested_dtype_converts_python_floats_from_their_exact_values():
    # float32 first would turn 0.1 into 0.10000000149011612 and 1e-300 into 0.
    assert lucid.tensor(0.1, dtype=lucid.float64).item() == 0.1
    assert lucid.tensor([0.1, 1e-300], dtype="float64").tolist() == [0.1, 1e-300]
    assert lucid.as_tensor([0.1], dtype=lucid.float64).tolist() == [0.1]
    assert lucid.tensor(0.1).item() == float(np.float32(0.1))  # the default stays float32


def test_as_tensor_with_a_dtype_shares_an_array_that_has_it_and_casts_one_that_does_not():
    a = np.arange(3.0)
    assert lucid.as_tensor(a, dtype=np.float64).numpy() is a
    cast = lucid.as_tensor(a, dtype="float32")
    assert cast.dtype == np.float32 and cast.tolist() == [0.0, 1.0, 2.0]


def test_as_tensor_with_a_dtype_casts_a_tensor_differentiably():
    leaf = lucid.ones(2, requires_grad=True)
    wide = lucid.as_tensor(leaf, dtype=lucid.float64)
    (wide * 3.0).sum().backward()
    assert wide.dtype == np.float64 and leaf.grad.dtype == np.float32 and leaf.grad.tolist() == [3.0, 3.0]


def test_as_tensor_refuses_strings_even_when_a_float_dtype_could_parse_them():
    with pytest.raises(TypeError, match=r"got list \['1.5'\]"):
        lucid.as_tensor(["1.5"], dtype=lucid.float64)


@pytest.mark.parametrize("make", [
    lambda: lucid.zeros(2.5),
    lambda: lucid.randn(2, 1.0),
    lambda: lucid.arange(6).reshape(2.0, 3),
    lambda: lucid.zeros(2, 3).permute(1.0, 0),
])
def test_sizes_and_dims_that_are_not_integers_raise_type_error_naming_them(make):
    # int() would truncate 2.5 to a tensor of two elements.
    with pytest.raises(TypeError, match=r"must be integers, got float (2\.5|1\.0|2\.0)"):
        make()


def test_sizes_may_be_numpy_integers_or_integer_tensors():
    assert lucid.zeros(np.int64(2), lucid.tensor(3)).shape == (2, 3)
    assert lucid.arange(6).reshape([np.int32(3), 2]).shape == (3, 2)
