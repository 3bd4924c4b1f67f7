"""The rules every KL entry point shares: reductions, float dtypes, argument checks, divisors.

``kl_div`` and ``KLDivLoss``, the streaming metric, the Dask engine and the
evaluation job each accept some of the reductions and divide the summed loss
by a count whose meaning they document (``kl_div``'s ``"batchmean"`` divides
by the leading dimension, the job's by the number of rows). What the names
are, which dtypes are floating, how a bad argument is reported and how a
count becomes a mean live here, once, so that the entry points cannot drift
apart; each asks for its rule by name.
"""
import math

import numpy as np

#: Every reduction ``kl_div`` knows, in the order its error message lists them.
REDUCTIONS = ("none", "mean", "sum", "batchmean")
#: The reductions that give one number (what an accumulator or a report can return),
#: their default first.
SCALAR_REDUCTIONS = ("batchmean", "mean", "sum")
#: The floating dtypes the kernels read, native byte order.
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def check_reduction(reduction, allowed=REDUCTIONS):
    """Return `reduction` if it is one of `allowed`.

    Parameters
    ----------
    reduction : object
        The caller's argument.
    allowed : tuple of str, default REDUCTIONS
        The reductions this caller supports.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Naming the allowed values and the one given.

    Examples
    --------
    >>> from lucid._kl_rules import SCALAR_REDUCTIONS, check_reduction
    >>> check_reduction("batchmean")
    'batchmean'
    >>> check_reduction("none", SCALAR_REDUCTIONS)
    Traceback (most recent call last):
    ...
    ValueError: reduction must be one of 'batchmean', 'mean', 'sum'; got 'none'
    """
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, allowed))}; got {reduction!r}")
    return reduction


def check_bool(value, name="log_target"):
    """Return a flag such as ``log_target`` as a bool, refusing anything but a Python or numpy bool.

    Parameters
    ----------
    value : object
        The caller's argument.
    name : str, default "log_target"
        Its name, for the message.

    Returns
    -------
    bool

    Raises
    ------
    TypeError
        Naming the type and the value given (``1`` is not taken for True).

    Examples
    --------
    >>> from lucid._kl_rules import check_bool
    >>> check_bool(False)
    False
    >>> check_bool(1)
    Traceback (most recent call last):
    ...
    TypeError: log_target must be a bool, got int 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_float_dtype(dtype, name, caller):
    """Refuse a dtype the kernels cannot read in place.

    Parameters
    ----------
    dtype : numpy.dtype
        The input's dtype.
    name : str
        The argument's name (``"x"``, ``"target"``).
    caller : str
        The function that checks, opening the message (``"kl_div"``).

    Returns
    -------
    numpy.dtype
        `dtype`, one of :data:`FLOAT_DTYPES`.

    Raises
    ------
    TypeError
        For a floating dtype in non-native byte order (with the conversion
        that fixes it), or for any dtype not in :data:`FLOAT_DTYPES`.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid._kl_rules import check_float_dtype
    >>> check_float_dtype(np.dtype(">f8"), "x", "kl_div")
    Traceback (most recent call last):
    ...
    TypeError: kl_div: x has dtype >f8, a non-native byte order; convert it first, e.g. x.astype('float64')
    >>> check_float_dtype(np.dtype("int64"), "target", "kl_div")
    Traceback (most recent call last):
    ...
    TypeError: kl_div: target must have a floating dtype (float16, float32 or float64), got int64
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and not dtype.isnative:
        # The kernels read native floats in place; a byte-swapped copy is the caller's call.
        native = dtype.newbyteorder("=")
        raise TypeError(f"{caller}: {name} has dtype {dtype.str}, a non-native byte order; "
                        f"convert it first, e.g. {name}.astype({native.name!r})")
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{caller}: {name} must have a floating dtype (float16, float32 or float64), "
                        f"got {dtype}")
    return dtype


def leading_dimension(shape):
    """Return what ``kl_div``'s ``"batchmean"`` divides by: the first dimension, 1 for a 0-d loss.

    Parameters
    ----------
    shape : tuple of int
        The loss shape.

    Returns
    -------
    int

    Examples
    --------
    >>> from lucid._kl_rules import leading_dimension
    >>> leading_dimension((4, 10)), leading_dimension(())
    (4, 1)
    """
    return shape[0] if len(shape) else 1


def divisor(reduction, elements, rows):
    """Return what the summed loss is divided by for `reduction`.

    Parameters
    ----------
    reduction : {"batchmean", "mean", "sum"}
    elements : int
        The number of per-element losses (``"mean"``).
    rows : int
        The caller's documented batch size (``"batchmean"``): ``kl_div``'s
        :func:`leading_dimension`, the metric's and the job's number of rows.

    Returns
    -------
    int
        1 for ``"sum"``.

    Raises
    ------
    ValueError
        For ``"none"`` or an unknown reduction.

    Examples
    --------
    >>> from lucid._kl_rules import divisor
    >>> divisor("mean", 40, 4), divisor("batchmean", 40, 4), divisor("sum", 40, 4)
    (40, 4, 1)
    """
    check_reduction(reduction, SCALAR_REDUCTIONS)
    return {"mean": elements, "sum": 1, "batchmean": rows}[reduction]


def reduce_total(total, reduction, elements, rows):
    """Return the summed loss `total` reduced by `reduction`: NaN for the mean of nothing.

    Parameters
    ----------
    total : float
    reduction : {"batchmean", "mean", "sum"}
    elements, rows : int
        As for :func:`divisor`.

    Returns
    -------
    float

    Examples
    --------
    >>> from lucid._kl_rules import reduce_total
    >>> reduce_total(6.0, "batchmean", 12, 3), reduce_total(0.0, "mean", 0, 0), reduce_total(0.0, "sum", 0, 0)
    (2.0, nan, 0.0)
    """
    return mean_over(total, divisor(reduction, elements, rows))


def mean_over(total, count):
    """Return ``total / count``, NaN when `count` is 0: the mean of nothing, as numpy's.

    Parameters
    ----------
    total : float
    count : int

    Returns
    -------
    float

    Examples
    --------
    >>> from lucid._kl_rules import mean_over
    >>> mean_over(3.0, 2), mean_over(0.0, 0)
    (1.5, nan)
    """
    return total / count if count else math.nan
