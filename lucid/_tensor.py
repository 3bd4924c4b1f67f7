"""Tensor: a numpy array plus the bookkeeping autograd needs.

A :class:`Tensor` wraps an ``numpy.ndarray`` (``_data``, never copied on wrap)
and records how it was computed (``grad_fn``), whether gradients flow to it
(``requires_grad``), its accumulated gradient (``grad``) and a version counter
bumped by every in-place operation, so the autograd engine can refuse to use a
saved tensor that changed after it was saved.

This module keeps the data, the metadata and the Python protocols that need
no operation, and imports nothing above the dtype and dimension helpers. The
mathematics lives in :mod:`lucid.ops` and the tape in :mod:`lucid.autograd`,
both built on this class; :mod:`lucid._tensor_methods`, which sits above them,
attaches the operators and the named methods (``exp``, ``sum``,
``backward`` ...) to it.
"""

import numpy as np

from lucid import _dims, _dtypes


class _VersionCounter:
    """A mutable int shared by a tensor and its views (in-place writes through either bump it)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """A multi-dimensional array that can record operations for autograd.

    Users create tensors with :func:`lucid.tensor` (copies),
    :func:`lucid.as_tensor` or :func:`lucid.from_numpy` (share numpy memory),
    which check and convert array-likes; the constructor only wraps a numpy
    array that is already what the tensor holds.

    Parameters
    ----------
    data : numpy.ndarray
        Wrapped as is, without a copy; bool, integer or floating point.
    requires_grad : bool, default False
        Whether operations on this tensor are recorded for autograd.

    Raises
    ------
    TypeError
        If `data` is not a numpy array, or holds neither numbers nor bools
        (strings, objects, complex numbers).
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
        # Converting here too would make a second, unchecked way in beside as_tensor.
        if not isinstance(data, np.ndarray):
            raise TypeError(f"Tensor() wraps a numpy.ndarray, got {type(data).__name__}; "
                            "convert other data with lucid.tensor or lucid.as_tensor")
        if data.dtype.kind not in _dtypes.REAL_KINDS:
            raise TypeError(f"a Tensor holds bools or real numbers, got an array of dtype {data.dtype}")
        self._data = data
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

    # -------------------------------------------------------------- printing
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
