"""repr: numpy-formatted values, then dtype (unless float32), requires_grad or grad_fn."""
import numpy as np

import lucid


def test_zero_dimensional_float32_prints_its_value_only():
    assert repr(lucid.tensor(0.0239093)) == "Tensor(0.0239093)"


def test_float32_vector_has_no_dtype_suffix():
    assert repr(lucid.tensor([1.0, 2.5])) == "Tensor([1. , 2.5])"


def test_other_dtypes_are_named():
    assert repr(lucid.tensor([1.0], dtype=lucid.float64)) == "Tensor([1.], dtype=float64)"
    assert repr(lucid.tensor([1, 2])) == "Tensor([1, 2], dtype=int64)"
    assert repr(lucid.tensor([True])) == "Tensor([ True], dtype=bool)"
    assert repr(lucid.tensor([0.5], dtype=lucid.float16)) == "Tensor([0.5], dtype=float16)"


def test_multi_line_rows_align_under_the_first():
    assert repr(lucid.tensor([[1.0, 2.0], [3.0, 4.0]])) == "Tensor([[1., 2.],\n        [3., 4.]])"


def test_a_leaf_that_requires_grad_says_so():
    assert repr(lucid.tensor([1.0], requires_grad=True)) == "Tensor([1.], requires_grad=True)"


def test_a_recorded_result_names_its_backward():
    x = lucid.tensor([1.0], dtype=lucid.float64, requires_grad=True)
    assert repr(x * 2) == "Tensor([2.], dtype=float64, grad_fn=<MulBackward>)"
    assert repr(x.sum()) == "Tensor(1., dtype=float64, grad_fn=<SumBackward>)"


def test_an_empty_matrix_shows_its_size():
    assert repr(lucid.zeros(0, 3)) == "Tensor([], size=(0, 3))"


def test_non_finite_values_print_as_numpy_does():
    assert repr(lucid.tensor([np.inf, -np.inf, np.nan])) == "Tensor([ inf, -inf,  nan])"
