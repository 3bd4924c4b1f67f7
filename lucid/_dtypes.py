"""lucid's dtypes and the rules that pick a result dtype.

lucid's dtypes are numpy dtypes, so a lucid tensor's ``dtype`` can be handed to
numpy as is:

========================  ========================
``lucid.float16``         ``numpy.dtype("float16")``
``lucid.float32``         ``numpy.dtype("float32")`` (the default floating dtype)
``lucid.float64``         ``numpy.dtype("float64")``
``lucid.int32``           ``numpy.dtype("int32")``
``lucid.int64``           ``numpy.dtype("int64")`` (the default integer dtype)
``lucid.bool``            ``numpy.dtype("bool")``
========================  ========================

The promotion rules live here, in one place, because creation functions,
arithmetic and in-place operators must agree on them:

- Tensors and numpy arrays (and numpy scalars) promote as numpy does.
- Python scalars are *weak*, as in the reference framework: they take the
  tensor's dtype unless they belong to a higher kind (bool < integer < float),
  in which case the default dtype of their kind is used (``int64``,
  ``float32``). So ``float16 tensor * 2.5`` stays float16 and
  ``int64 tensor * 2.5`` is float32.
"""

import builtins

import numpy as np

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool = np.dtype("bool")  # noqa: A001 - the public name mirrors the reference framework

# Kinds a tensor may hold: bool, signed and unsigned integers, floats.
REAL_KINDS = "biuf"
# Order of kinds used by the weak-scalar rule.
_KIND_RANK = {"b": 0, "i": 1, "u": 1, "f": 2}
_DEFAULT_FOR_RANK = {0: bool, 1: int64, 2: float32}
_PYTHON_SCALAR_TYPES = (builtins.bool, int, float)


def to_dtype(dtype):
    """Resolve a dtype given as a lucid dtype, numpy dtype, type or string.

    Parameters
    ----------
    dtype : numpy.dtype, type, str or None
        For example ``lucid.float64``, ``numpy.float64`` or ``"float64"``.

    Returns
    -------
    numpy.dtype or None
        The numpy dtype, or None when `dtype` is None.

    Raises
    ------
    TypeError
        If `dtype` is not understood or is not a real numeric dtype (complex,
        string and object dtypes are not supported).

    Examples
    --------
    >>> from lucid._dtypes import to_dtype
    >>> to_dtype("float64")
    dtype('float64')
    >>> to_dtype(None) is None
    True
    """
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a lucid/numpy dtype or its name, got {dtype!r}") from None
    if resolved.kind not in REAL_KINDS:
        raise TypeError(
            f"dtype must be a real numeric dtype such as float32 or int64, got {resolved}"
        )
    return resolved


def is_floating(dtype):
    """Tell whether `dtype` is a floating point dtype.

    Parameters
    ----------
    dtype : numpy.dtype

    Returns
    -------
    bool

    Examples
    --------
    >>> import lucid
    >>> from lucid._dtypes import is_floating
    >>> is_floating(lucid.float16), is_floating(lucid.int64)
    (True, False)
    """
    return np.dtype(dtype).kind == "f"


def is_python_scalar(value):
    """Tell whether `value` is a Python bool, int or float (a weak scalar).

    Parameters
    ----------
    value : object

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from lucid._dtypes import is_python_scalar
    >>> is_python_scalar(2.5), is_python_scalar(np.float64(2.5))
    (True, False)
    """
    # An exact type test: numpy.float64 subclasses float, but numpy scalars are strong operands.
    return type(value) in _PYTHON_SCALAR_TYPES


def _python_scalar_rank(value):
    if isinstance(value, builtins.bool):
        return 0
    if isinstance(value, int):
        return 1
    return 2


def result_type(*operands):
    """Return the dtype an arithmetic operation on `operands` produces.

    Parameters
    ----------
    *operands : Tensor, numpy.ndarray, numpy scalar, bool, int or float
        Objects with a ``dtype`` promote as numpy does; Python scalars are
        weak (see the module docstring).

    Returns
    -------
    numpy.dtype

    Examples
    --------
    >>> import numpy as np
    >>> from lucid._dtypes import result_type
    >>> result_type(np.zeros(2, np.float16), 2.5)
    dtype('float16')
    >>> result_type(np.zeros(2, np.int64), 2.5)
    dtype('float32')
    >>> result_type(np.zeros(2, np.float32), np.zeros(2, np.float64))
    dtype('float64')
    """
    strong = [op.dtype for op in operands if not is_python_scalar(op)]
    weak_ranks = [_python_scalar_rank(op) for op in operands if is_python_scalar(op)]
    if not strong:
        return _DEFAULT_FOR_RANK[max(weak_ranks)]
    # The common case, one dtype throughout, skips numpy's (slower) promotion.
    dtype = strong[0] if strong.count(strong[0]) == len(strong) else np.result_type(*strong)
    if weak_ranks and max(weak_ranks) > _KIND_RANK[dtype.kind]:
        return _DEFAULT_FOR_RANK[max(weak_ranks)]
    return dtype
