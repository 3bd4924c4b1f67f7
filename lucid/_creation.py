"""Creating tensors: from data, from numpy, filled, random, ranges.

Two conversions sit at the centre and every other function builds on them:

- :func:`tensor` copies, like the reference framework's ``tensor``: Python
  floats become float32, ints int64, bools bool; numpy data keeps its dtype.
- :func:`as_tensor` never copies numpy data (memory-mapped files and broadcast
  views are read in place), which is what lucid's functions use for their
  array-like arguments.

Both check their input in one place (``_to_array``): it is the only way from
an array-like to a tensor, since ``Tensor`` itself wraps only numpy arrays.

Random numbers come from one module-level ``numpy.random.Generator``, reseeded
by :func:`manual_seed`.
"""

import reprlib

import numpy as np

from lucid import _dtypes
from lucid._dims import int_tuple_argument
from lucid._tensor import Tensor

_generator = np.random.default_rng()


def tensor(data, dtype=None, requires_grad=False):
    """Create a tensor holding a copy of `data`.

    Parameters
    ----------
    data : array-like, Tensor or scalar
        Nested lists, numbers, numpy arrays or a Tensor (its values are copied,
        its graph is not).
    dtype : dtype or str, optional
        For example ``lucid.float64`` or ``"float64"``. By default numpy data
        and tensors keep their dtype; Python floats give float32, ints int64,
        bools bool.
    requires_grad : bool, default False

    Returns
    -------
    Tensor
        A leaf owning its memory.

    Raises
    ------
    TypeError
        If `data` is not numeric (strings, None, ragged lists ...).
    RuntimeError
        If `requires_grad` is True for a non-floating dtype.

    Examples
    --------
    >>> import lucid
    >>> lucid.tensor([1.0, 2.0])
    Tensor([1., 2.])
    >>> lucid.tensor([1, 2])
    Tensor([1, 2], dtype=int64)
    >>> lucid.tensor(0.5, dtype=lucid.float64, requires_grad=True)
    Tensor(0.5, dtype=float64, requires_grad=True)
    """
    dtype = _dtypes.to_dtype(dtype)
    return Tensor(np.array(_to_array(data, "data", dtype), dtype=dtype), requires_grad=requires_grad)


def as_tensor(obj, name="input", *, dtype=None):
    """Return `obj` as a Tensor, without copying numpy data of the wanted dtype.

    Parameters
    ----------
    obj : Tensor, array-like or scalar
        A Tensor is returned as is; a numpy array (any layout, read-only
        memory-mapped files and zero-stride broadcast views included) is
        wrapped in place with its dtype; numpy scalars become 0-d tensors;
        Python numbers and nested lists follow :func:`tensor`'s dtype rules.
    name : str, default "input"
        The argument's name, used in error messages.
    dtype : dtype or str, optional
        Convert to this dtype (a Tensor by the differentiable ``to``; Python
        numbers straight from their exact values). By default `obj` keeps its
        dtype.

    Returns
    -------
    Tensor

    Raises
    ------
    TypeError
        If `obj` is not numeric: None, strings, bytes, dicts, other objects,
        ragged lists, object or complex arrays; or a masked array (its mask
        would be ignored); or if `dtype` is not a supported dtype.
    Exception
        Whatever an object's own ``__array__`` raises, unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> import lucid
    >>> a = np.arange(3.0)
    >>> t = lucid.as_tensor(a)
    >>> t.numpy() is a
    True
    >>> lucid.as_tensor("abc", name="x")
    Traceback (most recent call last):
    ...
    TypeError: x must be a Tensor or array-like of numbers, got str 'abc'
    >>> lucid.as_tensor([0.1], dtype=lucid.float64).item()
    0.1
    """
    dtype = _dtypes.to_dtype(dtype)
    tensor = obj if isinstance(obj, Tensor) else Tensor(_to_array(obj, name, dtype))
    return tensor if dtype is None else tensor.to(dtype)


def from_numpy(array):
    """Create a tensor sharing memory with a numpy array.

    Parameters
    ----------
    array : numpy.ndarray

    Returns
    -------
    Tensor
        Writes through the tensor change `array` and vice versa.

    Raises
    ------
    TypeError
        If `array` is not a numpy array of numbers.

    Examples
    --------
    >>> import numpy as np
    >>> import lucid
    >>> a = np.zeros(2)
    >>> t = lucid.from_numpy(a)
    >>> t += 1
    >>> a
    array([1., 1.])
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(_to_array(array, "array"))


def _to_array(obj, name, dtype=None):
    """Convert `obj` to a numeric ndarray, never copying numpy data.

    `dtype` (resolved) reaches only Python numbers, which are converted to it
    from their exact values; the caller casts anything else.
    """
    if isinstance(obj, Tensor):
        array = obj._data
    elif isinstance(obj, np.ma.MaskedArray):
        # Reading the data would silently ignore the mask: refuse instead.
        raise TypeError(f"{name} is a numpy masked array, whose mask would be ignored; "
                        f"pass {name}.filled(value) or {name}.data explicitly")
    elif isinstance(obj, np.ndarray):
        array = obj
    elif isinstance(obj, np.generic):
        array = np.asarray(obj)
    elif _dtypes.is_python_scalar(obj) or isinstance(obj, (list, tuple)):
        array = _from_python(obj, name, dtype)
    elif obj is None or isinstance(obj, (str, bytes, dict, set)):
        raise _not_numeric(obj, name)
    else:
        array = _from_array_like(obj, name)
    if array.dtype.kind not in _dtypes.REAL_KINDS:
        raise _not_numeric(obj, name, array.dtype)
    return array


def _from_python(obj, name, dtype=None):
    """Nested Python numbers, as `dtype` or with the defaults: float32 for floats, int64 for ints."""
    try:
        array = np.array(obj)
    except (ValueError, OverflowError, TypeError) as error:
        raise _not_numeric(obj, name, detail=str(error)) from None
    if dtype is not None and array.dtype.kind in _dtypes.REAL_KINDS:
        # Cast once, from the exact values: through float32 first, 0.1 would lose digits a float64 keeps.
        return array.astype(dtype)
    if array.dtype == np.float64:
        return array.astype(_dtypes.float32)
    if array.dtype.kind == "i":
        return array.astype(_dtypes.int64, copy=False)
    return array


def _from_array_like(obj, name):
    """Objects exposing ``__array__`` or the buffer protocol (e.g. memoryview)."""
    if hasattr(type(obj), "__array__"):
        # The object converts itself: what its __array__ raises is for the
        # caller to see unchanged, not to be retold as a type complaint.
        return np.asarray(obj)
    try:
        return np.asarray(obj)
    except (ValueError, TypeError) as error:
        raise _not_numeric(obj, name, detail=str(error)) from None


def _not_numeric(obj, name, dtype=None, detail=None):
    if dtype is not None and isinstance(obj, np.ndarray):
        got = f"an array of dtype {dtype}"
    else:
        got = f"{type(obj).__name__} {reprlib.repr(obj)}"
    message = f"{name} must be a Tensor or array-like of numbers, got {got}"
    if detail:
        message += f" ({detail.splitlines()[0]})"
    return TypeError(message)


def _dtype_or(dtype, default):
    """The resolved `dtype`, or `default` when it is None."""
    return default if dtype is None else _dtypes.to_dtype(dtype)


def zeros(*size, dtype=None, requires_grad=False):
    """Create a tensor filled with zeros.

    Parameters
    ----------
    *size : int or a tuple of int
        The shape, as ``zeros(2, 3)`` or ``zeros((2, 3))``.
    dtype : dtype or str, optional
        Default float32.
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.zeros(2, 3)
    Tensor([[0., 0., 0.],
            [0., 0., 0.]])
    """
    return full(int_tuple_argument(size), 0, dtype=_dtype_or(dtype, _dtypes.float32), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    """Create a tensor filled with ones.

    Parameters
    ----------
    *size : int or a tuple of int
    dtype : dtype or str, optional
        Default float32.
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.ones(2, dtype=lucid.int64)
    Tensor([1, 1], dtype=int64)
    """
    return full(int_tuple_argument(size), 1, dtype=_dtype_or(dtype, _dtypes.float32), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    """Create a tensor filled with `fill_value`.

    Parameters
    ----------
    size : int or tuple of int
    fill_value : bool, int or float
    dtype : dtype or str, optional
        By default that of `fill_value` (float32, int64 or bool).
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.full((2,), 7)
    Tensor([7, 7], dtype=int64)
    >>> lucid.full(2, 0.5)
    Tensor([0.5, 0.5])
    """
    resolved = _dtype_or(dtype, _to_array(fill_value, "fill_value").dtype)
    shape = (size,) if isinstance(size, int) else tuple(size)
    return Tensor(np.full(shape, fill_value, dtype=resolved), requires_grad=requires_grad)


def zeros_like(input, dtype=None, requires_grad=False):
    """Create a tensor of zeros with the shape (and by default the dtype) of `input`.

    Parameters
    ----------
    input : Tensor or array-like
    dtype : dtype or str, optional
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.zeros_like(lucid.tensor([1, 2]))
    Tensor([0, 0], dtype=int64)
    """
    like = as_tensor(input)
    return full(like.shape, 0, dtype=_dtype_or(dtype, like.dtype), requires_grad=requires_grad)


def ones_like(input, dtype=None, requires_grad=False):
    """Create a tensor of ones with the shape (and by default the dtype) of `input`.

    Parameters
    ----------
    input : Tensor or array-like
    dtype : dtype or str, optional
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.ones_like(lucid.zeros(2, dtype=lucid.float64))
    Tensor([1., 1.], dtype=float64)
    """
    like = as_tensor(input)
    return full(like.shape, 1, dtype=_dtype_or(dtype, like.dtype), requires_grad=requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    """Create a tensor of samples from the standard normal distribution.

    Parameters
    ----------
    *size : int or a tuple of int
    dtype : dtype or str, optional
        Default float32.
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> _ = lucid.manual_seed(0)
    >>> lucid.randn(2, 3).shape
    (2, 3)
    """
    samples = _generator.standard_normal(int_tuple_argument(size))
    return tensor(samples, dtype=_dtype_or(dtype, _dtypes.float32), requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    """Create a tensor of samples from the uniform distribution on [0, 1).

    Parameters
    ----------
    *size : int or a tuple of int
    dtype : dtype or str, optional
        Default float32.
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> values = lucid.rand(1000).numpy()
    >>> bool((values >= 0).all() and (values < 1).all())
    True
    """
    samples = _generator.random(int_tuple_argument(size))
    return tensor(samples, dtype=_dtype_or(dtype, _dtypes.float32), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Create a 1-d tensor of evenly spaced values in ``[start, end)``.

    Parameters
    ----------
    start : int or float
        The first value, or the end when `end` is omitted (start is then 0).
    end : int or float, optional
    step : int or float, default 1
    dtype : dtype or str, optional
        int64 when all arguments are ints, else float32.
    requires_grad : bool, default False

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import lucid
    >>> lucid.arange(3)
    Tensor([0, 1, 2], dtype=int64)
    >>> lucid.arange(0, 1, 0.25)
    Tensor([0.  , 0.25, 0.5 , 0.75])
    """
    if end is None:
        start, end = 0, start
    default = _dtypes.result_type(start, end, step)
    values = np.arange(start, end, step, dtype=np.float64 if default.kind == "f" else default)
    return tensor(values, dtype=_dtype_or(dtype, default), requires_grad=requires_grad)


def manual_seed(seed):
    """Seed the generator behind :func:`randn` and :func:`rand`.

    Parameters
    ----------
    seed : int

    Returns
    -------
    numpy.random.Generator
        The new generator.

    Examples
    --------
    >>> import lucid
    >>> _ = lucid.manual_seed(1)
    >>> a = lucid.rand(3)
    >>> _ = lucid.manual_seed(1)
    >>> bool((lucid.rand(3) == a).numpy().all())
    True
    """
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator
