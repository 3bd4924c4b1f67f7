"""Tensor: a numpy array plus the bookkeeping autograd needs.

A :class:`Tensor` wraps an ``numpy.ndarray`` (``_data``, never copied on wrap)
and records how it was computed (``grad_fn``), whether gradients flow to it
(``requires_grad``), its accumulated gradient (``grad``) and a version counter
bumped by every in-place operation, so the autograd engine can refuse to use a
saved tensor that changed after it was saved.

The mathematics lives in :mod:`lucid.ops`. The named methods (``exp``,
``sum``, ``reshape`` ...) are the ops functions themselves and the operators
thin wrappers around them, all bound at the bottom of this module (the ops
import Tensor, so they can only be imported once it exists), so that each is
written and documented once.
"""

import numpy as np

from lucid import _dtypes


class _VersionCounter:
    """A mutable int shared by a tensor and its views (in-place writes through either bump it)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """A multi-dimensional array that can record operations for autograd.

    Users create tensors with :func:`lucid.tensor` (copies) or
    :func:`lucid.from_numpy` (shares memory); the constructor is internal.

    Parameters
    ----------
    data : numpy.ndarray
        Wrapped as is, without a copy.
    requires_grad : bool, default False
        Whether operations on this tensor are recorded for autograd.

    Raises
    ------
    RuntimeError
        If `requires_grad` is True and `data` is not floating point.

    Notes
    -----
    Arithmetic (``+ - * / ** @``, unary ``-``) broadcasts as numpy does and is
    differentiable; comparisons return bool tensors that do not require grad.
    Python scalars are weak operands (``float16 tensor * 2.5`` stays float16,
    see :mod:`lucid._dtypes`). In-place operators (``+=``, ``t[i] = v``,
    ``zero_()`` ...) write into ``_data`` and bump the version counter.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y
    Tensor(30., grad_fn=<SumBackward>)
    >>> y.backward()
    >>> x.grad
    Tensor([[2., 4.],
            [6., 8.]])
    """

    __slots__ = ("_data", "_requires_grad", "grad", "grad_fn", "_version_counter", "_base", "__weakref__")
    # Makes numpy defer to our reflected operators: ndarray + Tensor -> Tensor.
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False):
        self._data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self._requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._version_counter = _VersionCounter()
        # The tensor whose memory this one views, for the in-place checks.
        self._base = None
        if requires_grad:
            self.requires_grad = True

    # ----------------------------------------------------------------- metadata
    @property
    def shape(self):
        """tuple of int: the size of each dimension.

        Examples
        --------
        >>> import lucid
        >>> lucid.zeros(2, 3).shape
        (2, 3)
        """
        return self._data.shape

    @property
    def ndim(self):
        """int: the number of dimensions.

        Examples
        --------
        >>> import lucid
        >>> lucid.zeros(2, 3).ndim
        2
        """
        return self._data.ndim

    @property
    def dtype(self):
        """numpy.dtype: the element type (one of lucid's dtypes for tensors lucid creates).

        Examples
        --------
        >>> import lucid
        >>> lucid.tensor([1.0]).dtype, lucid.tensor([1]).dtype
        (dtype('float32'), dtype('int64'))
        """
        return self._data.dtype

    def size(self, dim=None):
        """Return the shape, or the size of one dimension.

        Parameters
        ----------
        dim : int, optional
            A dimension, negative values counting from the end.

        Returns
        -------
        tuple of int or int

        Raises
        ------
        IndexError
            If `dim` is out of range.

        Examples
        --------
        >>> import lucid
        >>> x = lucid.zeros(2, 3)
        >>> x.size(), x.size(-1)
        ((2, 3), 3)
        """
        if dim is None:
            return self.shape
        return self.shape[_dims.normalize_dim(dim, self.ndim)]

    def numel(self):
        """Return the number of elements.

        Returns
        -------
        int

        Examples
        --------
        >>> import lucid
        >>> lucid.zeros(2, 3).numel()
        6
        """
        return self._data.size

    @property
    def T(self):
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

    @property
    def _version(self):
        return self._version_counter.value

    def _bump_version(self):
        self._version_counter.value += 1

    # ----------------------------------------------------------------- autograd
    @property
    def requires_grad(self):
        """bool: whether gradients are computed for this tensor.

        Only floating point leaves may be switched on; non-leaves inherit it
        from their inputs.

        Examples
        --------
        >>> import lucid
        >>> x = lucid.ones(2, requires_grad=True)
        >>> x.requires_grad, (x * 2).requires_grad, lucid.ones(2).requires_grad
        (True, True, False)
        """
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not _dtypes.is_floating(self.dtype):
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        if not value and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; "
                "use detach() to get a tensor that does not require grad"
            )
        self._requires_grad = bool(value)

    @property
    def is_leaf(self):
        """bool: True for tensors not computed by a recorded operation.

        Examples
        --------
        >>> import lucid
        >>> x = lucid.ones(2, requires_grad=True)
        >>> x.is_leaf, (x * 2).is_leaf
        (True, False)
        """
        return self.grad_fn is None

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return this tensor.

        Parameters
        ----------
        requires_grad : bool, default True

        Returns
        -------
        Tensor
            This tensor.

        Raises
        ------
        RuntimeError
            If the tensor is not floating point (for True) or is not a leaf
            (for False).

        Examples
        --------
        >>> import lucid
        >>> lucid.zeros(2).requires_grad_()
        Tensor([0., 0.], requires_grad=True)
        """
        self.requires_grad = requires_grad
        return self

    def detach(self):
        """Return a tensor sharing this one's data but cut from the graph.

        Returns
        -------
        Tensor
            Shares memory and version counter; does not require grad.

        Examples
        --------
        >>> import lucid
        >>> x = lucid.ones(2, requires_grad=True)
        >>> (x * 2).detach()
        Tensor([2., 2.])
        """
        detached = Tensor(self._data)
        detached._version_counter = self._version_counter
        return detached

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
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
            tensor with more than one element, the graph was already freed or
            a tensor saved for backward was modified in place.

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

    # -------------------------------------------------------------- conversion
    def __array__(self, dtype=None, copy=None):
        array = conversion.numpy(self)
        if dtype is not None and np.dtype(dtype) != array.dtype:
            if copy is False:
                raise ValueError(f"converting {array.dtype} to {np.dtype(dtype)} requires a copy")
            return array.astype(dtype)
        return array.copy() if copy else array

    def float(self):
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

    def double(self):
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

    def __repr__(self):
        prefix = "Tensor("
        # The prefix makes numpy indent continuation rows under the first one.
        text = np.array2string(self._data, separator=", ", prefix=prefix)
        details = []
        if self._data.size == 0 and self.ndim != 1:
            details.append(f"size={self.shape}")
        if self.dtype != _dtypes.float32:
            details.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            details.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            details.append("requires_grad=True")
        return prefix + ", ".join([text, *details]) + ")"

    # ------------------------------------------------------ Python protocols
    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} values is ambiguous")
        return bool(self._data.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.size != 1 or self.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.item())

    # Tensors compare elementwise, so identity is what makes them hashable.
    __hash__ = object.__hash__

    def __getitem__(self, index):
        return indexing.getitem(self, index)

    def __setitem__(self, index, value):
        inplace.setitem(self, index, value)


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


# The ops and the engine build on Tensor, so they are imported once it exists.
from lucid.autograd import engine  # noqa: E402
from lucid.ops import (  # noqa: E402
    _dims,
    arithmetic,
    comparison,
    conversion,
    elementwise,
    indexing,
    inplace,
    reduction,
    shape,
)

# Named methods are the ops functions themselves (their first argument is the
# tensor), so each is documented once, in lucid.ops.
Tensor.numpy = conversion.numpy
Tensor.item = conversion.item
Tensor.tolist = conversion.tolist
Tensor.to = conversion.to
Tensor.clone = conversion.clone
Tensor.exp = elementwise.exp
Tensor.log = elementwise.log
Tensor.sum = reduction.sum
Tensor.mean = reduction.mean
Tensor.max = reduction.max
Tensor.reshape = shape.reshape
Tensor.view = shape.view
Tensor.transpose = shape.transpose
Tensor.permute = shape.permute
Tensor.unsqueeze = shape.unsqueeze
Tensor.squeeze = shape.squeeze
Tensor.zero_ = inplace.zero_
Tensor.fill_ = inplace.fill_
Tensor.add_ = inplace.add_
Tensor.sub_ = inplace.sub_
Tensor.mul_ = inplace.mul_
Tensor.div_ = inplace.div_

Tensor.__neg__ = arithmetic.neg
Tensor.__add__ = _operator(arithmetic.add)
Tensor.__radd__ = _operator(arithmetic.add, reflected=True)
Tensor.__sub__ = _operator(arithmetic.sub)
Tensor.__rsub__ = _operator(arithmetic.sub, reflected=True)
Tensor.__mul__ = _operator(arithmetic.mul)
Tensor.__rmul__ = _operator(arithmetic.mul, reflected=True)
Tensor.__truediv__ = _operator(arithmetic.div)
Tensor.__rtruediv__ = _operator(arithmetic.div, reflected=True)
Tensor.__pow__ = _operator(arithmetic.pow)
Tensor.__rpow__ = _operator(arithmetic.pow, reflected=True)
Tensor.__matmul__ = _operator(arithmetic.matmul)
Tensor.__rmatmul__ = _operator(arithmetic.matmul, reflected=True)
Tensor.__iadd__ = _operator(inplace.add_)
Tensor.__isub__ = _operator(inplace.sub_)
Tensor.__imul__ = _operator(inplace.mul_)
Tensor.__itruediv__ = _operator(inplace.div_)
Tensor.__eq__ = _operator(comparison.eq)
Tensor.__ne__ = _operator(comparison.ne)
Tensor.__lt__ = _operator(comparison.lt)
Tensor.__le__ = _operator(comparison.le)
Tensor.__gt__ = _operator(comparison.gt)
Tensor.__ge__ = _operator(comparison.ge)
