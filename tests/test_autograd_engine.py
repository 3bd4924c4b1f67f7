"""The backward engine: accumulation, graph lifetime, the errors it raises, depth and the Function API."""
import re
import tracemalloc

import numpy as np
import pytest

import lucid
from lucid.autograd import Function


def test_gradients_accumulate_into_grad_across_backward_calls():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]


def test_a_tensor_used_twice_receives_both_contributions():
    x = lucid.tensor(3.0, requires_grad=True)
    y = x * x + x
    y.backward()
    assert x.grad.item() == 7.0


def test_diamond_graph_runs_the_shared_node_once_with_the_summed_gradient():
    x = lucid.tensor(2.0, requires_grad=True)
    shared = x.exp()
    (shared * 2 + shared * 3).backward()
    assert x.grad.item() == pytest.approx(5 * np.exp(2.0))


def test_grad_of_a_leaf_is_an_independent_copy():
    a = lucid.tensor([1.0], requires_grad=True)
    b = lucid.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.zero_()
    assert b.grad.tolist() == [1.0]


def test_backward_with_an_explicit_gradient():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(lucid.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 40.0]


def test_backward_of_a_non_scalar_without_gradient_raises():
    x = lucid.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()


def test_backward_with_a_gradient_of_the_wrong_shape_raises():
    x = lucid.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of \(3,\)"):
        (x * 2).backward(lucid.ones(3))


@pytest.mark.parametrize("bad, shown", [(["a"], "list ['a']"), ("ab", "str 'ab'"), ({0: 1.0}, "dict {0: 1.0}")])
def test_backward_with_a_non_numeric_gradient_raises_type_error_naming_it(bad, shown):
    x = lucid.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match=re.escape(f"must be a Tensor or array-like of numbers, got {shown}")):
        (x * 2).backward(bad)


def test_backward_converts_python_numbers_to_the_outputs_dtype_from_their_exact_values():
    # Through float32 first, 0.1 would arrive as 0.10000000149011612.
    x = lucid.tensor([1.0, 2.0], dtype=lucid.float64, requires_grad=True)
    (x * 1.0).backward([0.1, 0.3])
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [0.1, 0.3]


def test_backward_of_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"):
        lucid.ones(2).sum().backward()


def test_second_backward_through_a_freed_graph_raises():
    x = lucid.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_saved_tensor_modified_in_place_raises_naming_the_versions():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y.exp()
    y += 1
    expected = "modified by an inplace operation.*is at version 1; expected version 0 instead"
    with pytest.raises(RuntimeError, match=expected):
        z.sum().backward()


def test_modifying_an_input_that_was_not_saved_is_fine():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y + 1  # addition saves nothing
    y += 1
    z.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_a_chain_of_100_000_operations_backpropagates_without_recursion():
    x = lucid.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = -y
    y.backward()
    # An even number of negations: a skipped node would flip the sign.
    assert x.grad.item() == 1.0


def test_nothing_is_recorded_when_no_input_requires_grad():
    y = lucid.ones(2) * 2
    assert y.grad_fn is None and not y.requires_grad


def test_results_of_recorded_ops_are_not_leaves():
    y = lucid.ones(2, requires_grad=True) * 2
    assert not y.is_leaf and y.requires_grad and y.grad is None


def test_requires_grad_cannot_be_switched_off_on_a_non_leaf():
    y = lucid.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def test_backward_reaches_a_leaf_through_detach_no_further():
    x = lucid.tensor(2.0, requires_grad=True)
    w = lucid.tensor(3.0, requires_grad=True)
    (x.detach() * w).backward()
    assert x.grad is None and w.grad.item() == 2.0


class Cube(Function):
    @staticmethod
    def forward(ctx, x, scale, label):
        ctx.save_for_backward(x)
        ctx.scale, ctx.label = scale, label
        return scale * x._data**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.scale * 3 * x * x, None, None


def test_function_passes_non_tensor_arguments_through_and_names_its_node():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = Cube.apply(x, 2.0, "cube")
    assert repr(y.grad_fn) == "<CubeBackward>"
    assert y.grad_fn.ctx.label == "cube"
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]


def test_needs_input_grad_is_aligned_with_the_forward_arguments():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, flag):
            seen.append(ctx.needs_input_grad)
            return a._data + b._data

        @staticmethod
        def backward(ctx, grad):
            return grad, grad, None

    Probe.apply(lucid.ones(1), lucid.ones(1, requires_grad=True), True)
    assert seen == [(False, True, False)]


def test_a_gradient_of_the_wrong_shape_from_backward_is_an_error_not_summed():
    class Broadcasting(Function):
        @staticmethod
        def forward(ctx, a):
            return np.broadcast_to(a._data, (3, 2))

        @staticmethod
        def backward(ctx, grad):
            return grad  # forgets to unbroadcast

    x = lucid.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BroadcastingBackward returned an invalid gradient at index 0.*\(3, 2\)"):
        Broadcasting.apply(x).sum().backward()


def test_backward_returning_the_wrong_number_of_gradients_raises():
    class TooMany(Function):
        @staticmethod
        def forward(ctx, a):
            return a._data * 1

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooMany.apply(lucid.ones(1, requires_grad=True)).sum().backward()


def test_forward_runs_without_recording_and_without_numpy_warnings():
    recorded = []

    class Inner(Function):
        @staticmethod
        def forward(ctx, a):
            recorded.append(lucid.is_grad_enabled())
            return np.log(a._data) / 0.0

        @staticmethod
        def backward(ctx, grad):
            return grad

    with np.errstate(all="raise"):
        y = Inner.apply(lucid.tensor([0.0, 1.0], requires_grad=True))
    assert recorded == [False]
    assert y._data[0] == -np.inf and np.isnan(y._data[1])


def test_integer_results_of_a_function_are_not_differentiable():
    _, indices = lucid.ones(2, 2, requires_grad=True).max(dim=0)
    assert not indices.requires_grad and indices.grad_fn is None


def test_autograd_backward_accepts_several_outputs():
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    lucid.autograd.backward([(x * x).sum(), x * 2], [None, lucid.tensor([1.0, 1.0])])
    assert x.grad.tolist() == [4.0, 6.0]


def test_leaves_sharing_one_gradient_get_separate_arrays():
    a = lucid.tensor([1.0, 2.0], requires_grad=True)
    b = lucid.tensor([3.0, 4.0], requires_grad=True)
    seed = lucid.tensor([1.0, 1.0])
    (a + b).backward(seed)
    a.grad.add_(10.0)
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(seed.numpy(), [1.0, 1.0])


def test_a_leaf_that_is_its_own_root_gets_a_copy_of_the_seed():
    a = lucid.tensor([1.0, 2.0], requires_grad=True)
    seed = lucid.tensor([5.0, 6.0])
    a.backward(seed)
    a.grad.zero_()
    np.testing.assert_array_equal(seed.numpy(), [5.0, 6.0])


def test_first_gradient_of_a_leaf_is_adopted_not_copied():
    # The gradient the pass makes for x is given to x.grad as is: peak memory
    # holds one gradient-sized array (8 MB), not two.
    x = lucid.tensor(np.ones(1_000_000), requires_grad=True)
    loss = (x * 2.0).sum()
    tracemalloc.start()
    loss.backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(x.grad.numpy()[:3], [2.0, 2.0, 2.0])
    assert peak < 1.5 * 8_000_000
