"""Hostile arguments to kl_div: an error naming the argument and what was given, or the right value.

Never a crash, a hang or a silently wrong number. docs/reliability.rst tabulates
these cases; each row there has a test here, in the property tests
(test_hypothesis_*.py) or in the memory, fork and huge-array tests.
"""
import decimal
import fractions

import numpy as np
import pytest

import lucid
from lucid.nn.functional import kl_div


def _deeply_nested(depth):
    value = 0.5
    for _ in range(depth):
        value = [value]
    return value


def _self_containing_list():
    cycle = []
    cycle.append(cycle)
    return cycle


# (id, value, text the TypeError must contain besides the argument's name)
NOT_NUMERIC = [
    ("None", None, "NoneType"),
    ("str", "0.5", "str"),
    ("bytes", b"\x00\x01", "bytes"),
    ("object", object(), "object"),
    ("dict", {"p": 0.5}, "dict"),
    ("set", {0.25, 0.75}, "set"),
    ("generator", (v for v in [0.5, 0.5]), "generator"),
    ("ragged_list", [[0.5, 0.5], [0.5]], "list"),
    ("list_with_None", [0.5, None], "list"),
    ("list_of_str", ["0.5", "0.5"], "list"),
    ("fractions", [fractions.Fraction(1, 2)] * 2, "list"),
    ("decimals", [decimal.Decimal("0.5")] * 2, "list"),
    ("complex_list", [0.5 + 1j, 0.5], "list"),
    ("int_beyond_int64", [2**70, 1], "list"),
    ("nested_65_deep", _deeply_nested(65), "list"),
    ("self_containing_list", _self_containing_list(), "list"),
    ("object_array", np.array([0.5, 0.5], dtype=object), "object"),
    ("str_array", np.array(["a", "b"]), "<U1"),
    ("bytes_array", np.array([b"a", b"b"]), "|S1"),
    ("datetime_array", np.array(["2024-01-01"] * 2, dtype="datetime64[D]"), "datetime64[D]"),
    ("timedelta_array", np.array([1, 2], dtype="timedelta64[s]"), "timedelta64[s]"),
    ("structured_array", np.zeros(2, dtype=[("p", "f8")]), "('p', '<f8')"),
]
NON_FLOAT_DTYPES = [np.uint8, np.int8, np.uint64, np.longdouble]


@pytest.mark.parametrize("which", ["x", "target"])
@pytest.mark.parametrize("value,shown", [case[1:] for case in NOT_NUMERIC],
                         ids=[case[0] for case in NOT_NUMERIC])
def test_non_numeric_argument_raises_type_error_naming_it(which, value, shown):
    args = (value, [0.5, 0.5]) if which == "x" else ([-0.5, -0.5], value)
    with pytest.raises(TypeError) as info:
        kl_div(*args)
    message = str(info.value)
    assert message.startswith(f"{which} ") or f" {which} " in message
    assert shown in message


@pytest.mark.parametrize("dtype", NON_FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_other_non_float_dtypes_raise_type_error_naming_the_dtype(dtype):
    if dtype is np.longdouble and np.dtype(np.longdouble) == np.dtype(np.float64):
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        kl_div(np.zeros(2, dtype=dtype), [0.5, 0.5])


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">f2"])
def test_byte_swapped_input_is_computed_right_or_rejected_by_dtype(dtype):
    x = np.log(np.array([0.5, 0.25, 0.25])).astype(dtype)
    p = np.array([0.25, 0.5, 0.25])
    expected = np.sum(p * (np.log(p) - x.astype(np.float64)))
    try:
        got = kl_div(x, p, reduction="sum").item()
    except TypeError as error:
        assert dtype in str(error)
    else:
        assert got == pytest.approx(expected, rel=1e-3 if dtype == ">f2" else 1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_unaligned_buffers_give_the_right_values(dtype, reduction):
    # Odd byte offsets into a buffer: valid numpy arrays the kernels must read safely.
    n, itemsize = 10007, np.dtype(dtype).itemsize
    x = np.zeros(n * itemsize + 1, dtype=np.uint8)[1:].view(dtype)
    p = np.zeros(n * itemsize + 1, dtype=np.uint8)[1:].view(dtype)
    assert not x.flags.aligned and not p.flags.aligned
    x[:], p[:] = -2.0, 0.25
    loss = 0.25 * (np.log(0.25) + 2.0)
    got = kl_div(x, p, reduction=reduction).numpy()
    expected = np.full(n, loss) if reduction == "none" else n * loss
    np.testing.assert_allclose(got, expected, rtol=1e-3 if dtype == np.float16 else 1e-6)


def test_unaligned_buffers_give_the_right_gradients():
    n = 10007
    x = np.zeros(n * 8 + 1, dtype=np.uint8)[1:].view(np.float64)
    x[:] = -2.0
    p = np.full(n, 0.25)
    x_leaf = lucid.Tensor(x, requires_grad=True)
    kl_div(x_leaf, p, reduction="sum").backward()
    np.testing.assert_array_equal(x_leaf.grad.numpy(), -p)


def test_array_like_object_is_read_through_its_array_interface():
    class Probabilities:
        def __array__(self, dtype=None, copy=None):
            return np.array([0.25, 0.75])

    got = kl_div(np.log([0.5, 0.5]), Probabilities(), reduction="sum").item()
    assert got == pytest.approx(0.25 * np.log(0.5) + 0.75 * np.log(1.5))


def test_array_like_whose_conversion_fails_raises_its_own_error():
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("cannot convert this")

    with pytest.raises(RuntimeError, match="cannot convert this"):
        kl_div(Broken(), [0.5, 0.5])


@pytest.mark.parametrize("bad", [float("nan"), b"sum", "SUM", ("sum",)], ids=repr)
def test_bad_reduction_error_names_the_value(bad):
    with pytest.raises(ValueError) as info:
        kl_div([-1.0], [0.5], reduction=bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [np.float64(1.0), 1, "True", [True]], ids=repr)
def test_bad_log_target_error_names_the_value(bad):
    with pytest.raises(TypeError) as info:
        kl_div([-1.0], [0.5], log_target=bad)
    assert repr(bad) in str(info.value) and "bool" in str(info.value)


def test_numpy_bool_log_target_is_accepted():
    got = kl_div([-1.0], [np.log(0.5)], reduction="sum", log_target=np.bool_(True)).item()
    assert got == pytest.approx(0.5 * (np.log(0.5) + 1.0))


def test_module_log_target_error_names_the_value():
    with pytest.raises(TypeError, match="'yes'"):
        lucid.nn.KLDivLoss(log_target="yes")(lucid.tensor([-1.0]), lucid.tensor([0.5]))


def test_shapes_too_large_to_broadcast_raise_value_error_naming_both():
    # Each view is small in memory; their broadcast would exceed any address space.
    x = np.broadcast_to(np.float64(-1.0), (2**40, 1))
    target = np.broadcast_to(np.float64(0.5), (1, 2**40))
    with pytest.raises(ValueError) as info:
        kl_div(x, target, reduction="sum")
    message = str(info.value)
    assert str(x.shape) in message and str(target.shape) in message
    assert "more elements than an array can index" in message


@pytest.mark.parametrize("which", ["x", "target"])
def test_more_than_32_dimensions_raise_value_error_naming_the_input(which):
    small, deep = np.full((2,), 0.5), np.full((1,) * 33, 0.5)
    x, target = (deep, small) if which == "x" else (small, deep)
    with pytest.raises(ValueError, match=f"kl_div: {which} has 33 dimensions; at most 32"):
        kl_div(x, target)
    np.testing.assert_allclose(kl_div(np.full((1,) * 32, -1.0), np.full((1,) * 32, 0.5)).item(),
                               0.5 * (np.log(0.5) + 1.0))


@pytest.mark.parametrize("x_shape, target_shape, shape", [
    ((3, 1), (4,), (3, 4)), ((0, 1), (1, 5), (0, 5)), ((1, 0), (3, 1), (3, 0)), ((), (2, 3), (2, 3)),
])
def test_loss_shapes_follow_numpy_broadcasting(x_shape, target_shape, shape):
    got = kl_div(np.full(x_shape, -1.0), np.full(target_shape, 0.5), reduction="none")
    assert got.shape == shape == np.broadcast_shapes(x_shape, target_shape)
