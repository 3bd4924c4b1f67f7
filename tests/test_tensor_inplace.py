"""In-place operators: values, the version counter, and what autograd refuses."""
import numpy as np
import pytest

import lucid


def test_in_place_operators_update_values():
    t = lucid.tensor([1.0, 2.0])
    t += 1
    t -= lucid.tensor([0.5, 0.5])
    t *= 2
    t /= 4
    assert t.tolist() == [0.75, 1.25]


def test_in_place_operators_keep_the_same_object_and_array():
    t = lucid.ones(2)
    data, before = t._data, t
    t += 1
    assert t is before and t._data is data


def test_named_in_place_methods():
    t = lucid.ones(3)
    assert t.add_(lucid.ones(3), alpha=2).tolist() == [3.0, 3.0, 3.0]
    assert t.mul_(2).tolist() == [6.0, 6.0, 6.0]
    assert t.fill_(1.5).tolist() == [1.5, 1.5, 1.5]
    assert t.zero_().tolist() == [0.0, 0.0, 0.0]


def test_in_place_result_keeps_the_tensor_dtype():
    t = lucid.ones(2, dtype=lucid.float16)
    t += lucid.ones(2, dtype=lucid.float64)
    assert t.dtype == np.float16


def test_in_place_integer_plus_float_raises():
    t = lucid.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type float32 can't be cast to the desired output type int64"):
        t += 1.5


def test_setitem_writes_basic_and_advanced_indices():
    t = lucid.zeros(2, 3)
    t[0] = lucid.tensor([1.0, 2.0, 3.0])
    t[1, [0, 2]] = 7.0
    t[t == 2.0] = -1.0
    assert t.tolist() == [[1.0, -1.0, 3.0], [7.0, 0.0, 7.0]]


@pytest.mark.parametrize(
    "modify",
    [
        lambda t: t.__iadd__(1),
        lambda t: t.__isub__(1),
        lambda t: t.__imul__(2),
        lambda t: t.__itruediv__(2),
        lambda t: t.__setitem__(0, 1.0),
        lambda t: t.zero_(),
        lambda t: t.fill_(1.0),
        lambda t: t.add_(1),
        lambda t: t.mul_(2),
    ],
    ids=["iadd", "isub", "imul", "idiv", "setitem", "zero_", "fill_", "add_", "mul_"],
)
def test_every_in_place_operation_bumps_the_version(modify):
    t = lucid.ones(2)
    modify(t)
    assert t._version == 1


def test_out_of_place_operations_leave_the_version_alone():
    t = lucid.ones(2)
    _ = t + 1, t * 2, t[0], t.sum()
    assert t._version == 0


def test_a_view_shares_the_version_counter_of_its_base():
    base = lucid.zeros(4)
    view = base[1:3]
    view += 1
    assert base._version == view._version == 1
    assert base.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_detach_shares_the_version_counter():
    t = lucid.zeros(2, requires_grad=True)
    t.detach().zero_()
    assert t._version == 1


@pytest.mark.parametrize(
    "modify",
    [lambda t: t.__iadd__(1), lambda t: t.__setitem__(0, 1.0), lambda t: t.zero_(), lambda t: t.mul_(2)],
    ids=["iadd", "setitem", "zero_", "mul_"],
)
def test_in_place_on_a_leaf_that_requires_grad_raises(modify):
    t = lucid.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation."):
        modify(t)


def test_in_place_on_a_leaf_that_requires_grad_is_allowed_under_no_grad():
    t = lucid.ones(2, requires_grad=True)
    with lucid.no_grad():
        t -= 0.5
    assert t.tolist() == [0.5, 0.5] and t.is_leaf and t.requires_grad


def test_in_place_on_a_non_leaf_records_the_new_history():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y *= x
    y.sum().backward()
    assert repr(y.grad_fn) == "<MulBackward>"
    assert x.grad.tolist() == [6.0, 12.0]  # d/dx (3x * x) = 6x


def test_in_place_with_an_operand_that_requires_grad_makes_the_target_require_grad():
    w = lucid.tensor([2.0], requires_grad=True)
    y = lucid.zeros(1)
    y += w * w
    y.sum().backward()
    assert y.requires_grad and not y.is_leaf and w.grad.tolist() == [4.0]


def test_setitem_on_a_non_leaf_routes_gradients_to_both_sides():
    x = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = lucid.tensor(10.0, requires_grad=True)
    y = x * 1
    y[1] = v * 2
    (y * lucid.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 3.0]
    assert v.grad.item() == 4.0


def test_in_place_through_a_view_when_gradients_are_involved_raises():
    y = lucid.ones(3, requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="view"):
        y[0:2].mul_(2)


def test_writing_into_a_read_only_array_raises_value_error():
    t = lucid.as_tensor(np.broadcast_to(np.zeros(1), (3,)))
    with pytest.raises(ValueError, match="read-only"):
        t += 1
