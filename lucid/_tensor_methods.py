"""The operators and named methods of :class:`~lucid.Tensor`, attached from above the ops and the tape.

:mod:`lucid._tensor` defines the class with its data, metadata and the Python
protocols that need no operation; the ops in :mod:`lucid.ops` and the tape in
:mod:`lucid.autograd` build on that class. This module sits above both and
binds them onto it (HIPS/autograd's ``numpy_boxes`` does the same for its
box), so that no file below imports one that imports it back. ``lucid``
imports it right after ``Tensor``, before anything can use a tensor.

The named methods (``exp``, ``sum``, ``reshape`` ...) are the ops functions
themselves, whose first argument is the tensor, so each is written and
documented once, in :mod:`lucid.ops`; the operators are thin wrappers around
them.
"""

import numpy as np

from lucid import _dtypes
from lucid._tensor import Tensor
from lucid.autograd import engine
from lucid.ops import arithmetic, comparison, conversion, elementwise, indexing, inplace, reduction, shape


def _reversed_dims(self):
    """Tensor: this tensor with its dimensions reversed (a differentiable view).

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([[1.0, 2.0, 3.0]]).T
    Tensor([[1.],
            [2.],
            [3.]])
    """
    return shape.permute(self, tuple(reversed(range(self.ndim))))


def _backward(self, gradient=None, retain_graph=None, create_graph=False):
    """Accumulate the gradient of this tensor into the ``.grad`` of the leaves.

    Parameters
    ----------
    gradient : Tensor or array-like, optional
        The gradient with respect to this tensor; may be omitted only for
        a tensor with one element (it is then 1).
    retain_graph : bool, optional
        Keep the graph so that backward can run through it again. Defaults
        to `create_graph`.
    create_graph : bool, default False
        Record the backward pass, so that the gradients can themselves be
        differentiated (second derivatives).

    Returns
    -------
    None
        The gradients are added into the ``.grad`` of the leaves.

    Raises
    ------
    RuntimeError
        If this tensor does not require grad, `gradient` is omitted for a
        tensor with more than one element or has another shape, the graph
        was already freed or a tensor saved for backward was modified in
        place.
    TypeError
        If `gradient` is not a Tensor or an array-like of numbers.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> (x ** 2).sum().backward()
    >>> x.grad
    Tensor([2., 4.])
    """
    gradients = None if gradient is None else (gradient,)
    engine.backward((self,), gradients, retain_graph=retain_graph, create_graph=create_graph)


def _float(self):
    """Return this tensor as float32 (differentiable; self if already float32).

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1, 2]).float()
    Tensor([1., 2.])
    """
    return conversion.to(self, _dtypes.float32)


def _double(self):
    """Return this tensor as float64 (differentiable; self if already float64).

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.5]).double()
    Tensor([1.5], dtype=float64)
    """
    return conversion.to(self, _dtypes.float64)


def _array(self, dtype=None, copy=None):
    # Through conversion.numpy, so np.asarray(t) refuses a tensor that requires grad as t.numpy() does.
    array = conversion.numpy(self)
    if dtype is not None and np.dtype(dtype) != array.dtype:
        if copy is False:
            raise ValueError(f"converting {array.dtype} to {np.dtype(dtype)} requires a copy")
        return array.astype(dtype)
    return array.copy() if copy else array


def _is_operand(value):
    """Tell whether `value` may be combined with a tensor by an operator."""
    return isinstance(value, (Tensor, np.ndarray, np.generic, bool, int, float))


def _operator(function, reflected=False):
    """Make a binary operator method that calls ``function(self, other)`` (or reflected).

    Unsupported operands give NotImplemented, so Python raises its usual
    TypeError for ``t + "a"`` and ``t == None`` is simply False.
    """

    def method(self, other):
        if not _is_operand(other):
            return NotImplemented
        return function(other, self) if reflected else function(self, other)

    return method


def _own_method(name, function):
    """`function` renamed for the method it becomes, so help() and the docs show ``Tensor.name``."""
    function.__name__ = name
    function.__qualname__ = f"Tensor.{name}"
    return function


_NAMED_METHODS = {
    "numpy": conversion.numpy,
    "item": conversion.item,
    "tolist": conversion.tolist,
    "to": conversion.to,
    "clone": conversion.clone,
    "float": _own_method("float", _float),
    "double": _own_method("double", _double),
    "backward": _own_method("backward", _backward),
    "exp": elementwise.exp,
    "log": elementwise.log,
    "sum": reduction.sum,
    "mean": reduction.mean,
    "max": reduction.max,
    "reshape": shape.reshape,
    "view": shape.view,
    "transpose": shape.transpose,
    "permute": shape.permute,
    "unsqueeze": shape.unsqueeze,
    "squeeze": shape.squeeze,
    "zero_": inplace.zero_,
    "fill_": inplace.fill_,
    "add_": inplace.add_,
    "sub_": inplace.sub_,
    "mul_": inplace.mul_,
    "div_": inplace.div_,
    "__array__": _own_method("__array__", _array),
    "__getitem__": indexing.getitem,
    "__setitem__": inplace.setitem,
    "__neg__": arithmetic.neg,
}

# Binary operators: name -> (op, reflected name). In-place and comparison
# operators have no reflected form here (Python reflects comparisons itself).
_BINARY_OPERATORS = {
    "__add__": (arithmetic.add, "__radd__"),
    "__sub__": (arithmetic.sub, "__rsub__"),
    "__mul__": (arithmetic.mul, "__rmul__"),
    "__truediv__": (arithmetic.div, "__rtruediv__"),
    "__pow__": (arithmetic.pow, "__rpow__"),
    "__matmul__": (arithmetic.matmul, "__rmatmul__"),
    "__iadd__": (inplace.add_, None),
    "__isub__": (inplace.sub_, None),
    "__imul__": (inplace.mul_, None),
    "__itruediv__": (inplace.div_, None),
    "__eq__": (comparison.eq, None),
    "__ne__": (comparison.ne, None),
    "__lt__": (comparison.lt, None),
    "__le__": (comparison.le, None),
    "__gt__": (comparison.gt, None),
    "__ge__": (comparison.ge, None),
}


def _attach():
    Tensor.T = property(_reversed_dims)
    for name, function in _NAMED_METHODS.items():
        setattr(Tensor, name, function)
    for name, (function, reflected_name) in _BINARY_OPERATORS.items():
        setattr(Tensor, name, _operator(function))
        if reflected_name is not None:
            setattr(Tensor, reflected_name, _operator(function, reflected=True))


_attach()
