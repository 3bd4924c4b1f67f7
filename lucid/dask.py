"""lucid's KL divergence on Dask arrays, for data spread over the workers of a cluster.

Every block runs lucid's OpenMP kernels on the worker that holds it. Reductions
send back one float64 partial sum per block, and the partial sums are combined
with the same compensated sum as :class:`lucid.metrics.KLDivergence`, in block
order, so a result does not depend on which worker finished first.
"""
import math

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as error:  # an optional extra: say how to get it
    raise ImportError("lucid.dask needs Dask: pip install 'lucid[dask]'") from error

from lucid import _kl_rules
from lucid._ext import kl_div as kernels
from lucid.metrics._compensated import CompensatedSum
from lucid.metrics.per_row import check_kind, check_temperature, kl_div_per_row as _per_row

__all__ = ["kl_div", "kl_div_per_row"]


def kl_div(x, target, reduction="mean", log_target=False):
    r"""``lucid.nn.functional.kl_div`` over Dask arrays, block by block.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Log-probabilities :math:`\log q`, any shape and chunking.
    target : dask.array.Array or array_like
        :math:`p`, or :math:`\log p` when ``log_target=True``; broadcasts with
        ``x``. Chunks are aligned with ``x``'s.
    reduction : {"mean", "batchmean", "sum", "none"}, default "mean"
        As in ``kl_div``: ``"batchmean"`` divides the sum by the leading
        dimension, ``"mean"`` by the number of elements.
    log_target : bool, default False
        Whether ``target`` holds :math:`\log p`.

    Returns
    -------
    dask.array.Array
        Lazy: a 0-d float64 array for the reductions, the per-element losses
        (the promoted input dtype) for ``"none"``. Call ``.compute()``.

    Raises
    ------
    ValueError
        If ``reduction`` is unknown, the shapes do not broadcast, or a chunk
        size is unknown (NaN).
    TypeError
        If an input is not floating or ``log_target`` is not a bool.

    See Also
    --------
    lucid.nn.functional.kl_div : The same on one machine.
    kl_div_per_row : KL per distribution from logits, log-probs or probs.

    Notes
    -----
    Each block's losses are summed by lucid's fixed-order float64 kernel on
    its worker; only that float travels. The block sums are added with
    Neumaier compensation in block order, so the result agrees with one
    ``kl_div`` call to about :math:`10^{-15}` relative for float64 data
    (not bitwise: the blocks cut the fixed-order sum differently), and is
    the same for every run over the same chunking. Reductions stay in float64
    whatever the input dtype, like :class:`lucid.metrics.KLDivergence`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import lucid.dask
    >>> from lucid.nn.functional import kl_div
    >>> rng = np.random.default_rng(0)
    >>> log_q = np.log(rng.dirichlet(np.ones(5), size=100))
    >>> p = rng.dirichlet(np.ones(5), size=100)
    >>> lazy = lucid.dask.kl_div(da.from_array(log_q, chunks=30), p, reduction="batchmean")
    >>> lazy.compute(scheduler="synchronous")
    0.7775...
    >>> kl_div(log_q, p, reduction="batchmean")
    Tensor(0.7775..., dtype=float64)
    """
    _kl_rules.check_reduction(reduction)
    log_target = _kl_rules.check_bool(log_target)
    x, target = _float_dask(x, "x"), _float_dask(target, "target")
    try:
        x, target = da.broadcast_arrays(x, target)
    except ValueError:
        raise ValueError(f"lucid.dask.kl_div: x of shape {x.shape} and target of shape "
                         f"{target.shape} do not broadcast") from None
    # Block i of x must meet block i of target: give target x's chunks.
    target = target.rechunk(x.chunks)
    if reduction == "none":
        dtype = np.result_type(x.dtype, target.dtype)
        return da.map_blocks(_block_losses, x, target, log_target=log_target, dtype=dtype)
    partials = _block_sums(x, target, log_target)
    rows = _kl_rules.leading_dimension(x.shape)
    total = dask.delayed(_combine)(partials, reduction, x.size, rows)
    return da.from_delayed(total, shape=(), dtype=np.float64)


def kl_div_per_row(student, teacher, *, student_kind="logits", teacher_kind="logits",
                   temperature=1.0):
    r"""KL(teacher || student) of every distribution of two Dask arrays.

    Parameters
    ----------
    student, teacher : dask.array.Array or array_like, shape (..., C)
        One shape; the last axis holds the ``C`` classes and is gathered into
        one chunk if it is split.
    student_kind, teacher_kind : {"logits", "log-probs", "probs"}, default "logits"
        What the values are.
    temperature : float, default 1.0
        Divides logits before their softmax.

    Returns
    -------
    dask.array.Array
        Lazy float64 array of shape ``shape[:-1]``, chunked like the inputs'
        leading axes.

    Raises
    ------
    ValueError
        For an unknown kind, a temperature that is not finite and positive,
        shapes that differ or 0-d inputs.

    See Also
    --------
    lucid.metrics.kl_div_per_row : The same on numpy arrays, and the details.

    Notes
    -----
    Each block runs the fused row kernel on its worker: logits are normalised
    row by row without full-size temporaries. A row's value does not depend on
    the chunking or the worker, so the result equals the single-machine
    ``lucid.metrics.kl_div_per_row`` bit for bit.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import lucid.dask
    >>> teacher = da.from_array(np.array([[2.0, 0.5, 0.1], [0.3, 0.3, 0.3]]), chunks=1)
    >>> student = da.zeros((2, 3), chunks=1)
    >>> lucid.dask.kl_div_per_row(student, teacher).compute(scheduler="synchronous")
    array([0.3309..., 0.        ])
    """
    check_kind("student_kind", student_kind)
    check_kind("teacher_kind", teacher_kind)
    check_temperature(temperature)
    student, teacher = da.asarray(student), da.asarray(teacher)
    if student.shape != teacher.shape or student.ndim == 0:
        raise ValueError(f"lucid.dask.kl_div_per_row: student of shape {student.shape} and "
                         f"teacher of shape {teacher.shape} must share one shape (..., C)")
    # Whole rows in every block, and the teacher's blocks cut where the student's are.
    student = student.rechunk({student.ndim - 1: -1})
    teacher = teacher.rechunk(student.chunks)
    return da.map_blocks(_per_row, student, teacher, drop_axis=student.ndim - 1, dtype=np.float64,
                         student_kind=student_kind, teacher_kind=teacher_kind,
                         temperature=float(temperature))


def _float_dask(value, name):
    array = da.asarray(value)
    _kl_rules.check_float_dtype(array.dtype, name, "lucid.dask.kl_div")
    if any(math.isnan(n) for n in array.shape):
        # Broadcasting and the divisor of "mean" and "batchmean" need the shape.
        raise ValueError(f"lucid.dask.kl_div: {name} has unknown chunk sizes (shape "
                         f"{array.shape}); call compute_chunk_sizes() on it first")
    return array


def _block_losses(x, target, log_target):
    dtype = np.result_type(x.dtype, target.dtype)
    return kernels.kl_div_elementwise(x, target, log_target).astype(dtype, copy=False)


def _block_sum(x, target, log_target):
    """One block's float64 loss sum, shaped as one element per block."""
    return np.full((1,) * x.ndim, kernels.kl_div_sum(x, target, log_target))


def _block_sums(x, target, log_target):
    """A float64 array of the blocks' loss sums, one element per block."""
    if x.ndim == 0:
        return da.map_blocks(_block_sum, x, target, log_target=log_target, dtype=np.float64)
    index = tuple(range(x.ndim))
    return da.blockwise(_block_sum, index, x, index, target, index, log_target=log_target,
                        dtype=np.float64, adjust_chunks={axis: 1 for axis in index})


def _combine(partials, reduction, elements, rows):
    """The reduced loss from the block sums, added as the metric adds its batches."""
    total = CompensatedSum()
    for value in np.asarray(partials).ravel():
        total.add(value)
    return _kl_rules.reduce_total(total.value, reduction, elements, rows)
