"""Array-level fused distillation loss: logits in, per-row constants and gradients out.

The wrappers take arrays of one shape ``(..., classes)`` (broadcast views
included) with the class axis last, merge the leading axes into one row axis
wherever every operand allows it as a view (otherwise walk the array as
several 2-D pieces), and hand each piece's addresses and strides to the
kernels of ``_distill``. Nothing input-sized is allocated here except the
gradient itself.

Per row, with x = s / T - max(s / T) and y = t / T - max(t / T), the forward
keeps ``stats``: both maxima, both log-sum-exps, the divergence, and for the
JSD its two KL terms; the gradients follow from them and the logits (the
formulas are in the docstring of ``lucid.nn.functional.distillation``).
"""
import itertools
import math

import numpy as np

from lucid._ext import _distill, _simd
from lucid._ext._openmp_helpers import effective_n_threads

DIVERGENCES = tuple(_distill.DIVERGENCE_CODES)
N_STATS = _distill.N_STATS
_DIVERGENCE_COLUMN = _distill.STAT_COLUMNS["divergence"]


def compute_dtype(*dtypes):
    """The precision the kernels compute in: float64 if an input is, else float32."""
    return np.dtype(np.float64) if np.float64 in dtypes else np.dtype(np.float32)


def _operand(view):
    """What the kernels need of a 2-D view: address, strides in bytes and storage kind."""
    return (view.__array_interface__["data"][0], view.strides[0], view.strides[1],
            _distill.KIND_CODES[view.dtype.name])


def _level():
    # The SIMD level is _simd's choice, made in one place; the kernels follow it.
    return _simd.SIMD_LEVELS.index(_simd.simd_level())


def _n_threads(rows, cols):
    # Decided once per piece of rows, here: small pieces get 1 (no OpenMP region).
    return effective_n_threads(rows * cols, _distill.MIN_WORK_PER_THREAD)


def _row_stride(array):
    """The stride of ``array``'s rows when its leading axes merge into one (C order), else None."""
    lead = [(n, stride) for n, stride in zip(array.shape[:-1], array.strides[:-1]) if n != 1]
    if all(outer == inner * n for (_, outer), (n, inner) in zip(lead, lead[1:])):
        return lead[-1][1] if lead else 0
    return None


def row_pieces(*arrays):
    """``(first_row, views)`` for every 2-D ``(rows, classes)`` piece of same-shape arrays.

    Rows are numbered in C order of the leading axes; nothing is copied, and
    writeable arrays give writeable views.
    """
    shape = arrays[0].shape
    rows, classes = math.prod(shape[:-1]), shape[-1]
    strides = [_row_stride(a) for a in arrays]
    if None not in strides:
        return [(0, tuple(np.lib.stride_tricks.as_strided(
            a, shape=(rows, classes), strides=(rs, a.strides[-1]), writeable=a.flags.writeable)
            for a, rs in zip(arrays, strides)))]
    # Leading axes that do not merge (e.g. a transposed batch): one 2-D view
    # per index of all but the last leading axis.
    per_piece = shape[-2]
    return [(number * per_piece, tuple(a[index] for a in arrays))
            for number, index in enumerate(itertools.product(*(range(n) for n in shape[:-2])))]


def forward(student, teacher, temperature, divergence, beta, keep=None, grad_coef=None,
            grad_out=None):
    """Per-row constants of the loss and, with ``grad_out``, the student's gradient.

    ``student`` and ``teacher`` have one shape ``(..., classes)``; ``keep`` is
    None or a C-contiguous bool array of shape ``shape[:-1]`` (False: the row
    is never read, its constants are 0 and its gradient row is 0).

    Returns ``stats``, a float64 array of shape ``(*shape[:-1], N_STATS)``
    whose :func:`divergences` are the rows' divergences before any temperature
    scaling. With ``grad_out`` (a writable array of the inputs' shape, any
    layout) and ``grad_coef``, the gradient w.r.t. the student times
    ``grad_coef`` (see :func:`gradient`) is written into ``grad_out`` while
    each row is in cache.
    """
    shape = student.shape
    stats = np.zeros(shape[:-1] + (N_STATS,))
    grad = grad_out
    if stats.size == 0 or shape[-1] == 0:
        # No rows, or empty distributions: an empty sum is 0, and so is its gradient.
        if grad is not None:
            grad[...] = 0
        return stats
    compute = _compute_code(student, teacher)
    flat_stats = stats.reshape(-1, N_STATS)
    flat_keep = _keep_bytes(keep)
    operands = (student, teacher) if grad is None else (student, teacher, grad)
    for first, views in row_pieces(*operands):
        stop = first + views[0].shape[0]
        extra = {} if grad is None else {"student_grad": _operand(views[2]),
                                         "coef": _coef_rows(grad_coef, first, stop)}
        _distill.forward_rows(_operand(views[0]), _operand(views[1]), shape[-1], compute,
                              _rows(flat_keep, first, stop), flat_stats[first:stop],
                              1.0 / temperature, _distill.DIVERGENCE_CODES[divergence], beta,
                              _level(), _n_threads(stop - first, shape[-1]), **extra)
    return stats


def gradient(student, teacher, stats, coef, temperature, divergence, beta, out, keep=None,
             wrt_teacher=False):
    """Write d loss / d student (or teacher) times ``coef`` into ``out``; return ``out``.

    ``stats`` is what :func:`forward` returned for the same arguments;
    ``out`` a writable array of the inputs' shape (any layout and float
    dtype). ``coef`` is one value for every row or a float64 array of shape
    ``shape[:-1]``: the upstream gradient times whatever scales the loss.
    Rows with ``keep`` False get a gradient of exactly 0.
    """
    shape = student.shape
    if out.size == 0:
        return out
    compute = _compute_code(student, teacher)
    flat_stats = stats.reshape(-1, N_STATS)
    flat_keep = _keep_bytes(keep)
    for first, (s, t, o) in row_pieces(student, teacher, out):
        stop = first + s.shape[0]
        _distill.gradient_rows(_operand(s), _operand(t), _operand(o), shape[-1], compute,
                               _rows(flat_keep, first, stop), flat_stats[first:stop],
                               _coef_rows(coef, first, stop), wrt_teacher, 1.0 / temperature,
                               _distill.DIVERGENCE_CODES[divergence], beta, _level(),
                               _n_threads(stop - first, shape[-1]))
    return out


def _compute_code(student, teacher):
    return _distill.KIND_CODES[compute_dtype(student.dtype, teacher.dtype).name]


def _coef_rows(coef, first, stop):
    """The gradient factor for rows ``[first, stop)``: one float64 value, or one per row."""
    coef = np.asarray(coef, dtype=np.float64)
    return coef.reshape(1) if coef.ndim == 0 else coef.reshape(-1)[first:stop]


def _rows(flat_keep, first, stop):
    return flat_keep[first:stop] if flat_keep.size else flat_keep


def divergences(stats):
    """The per-row divergence column of ``stats`` (a view)."""
    return stats[..., _DIVERGENCE_COLUMN]


_NO_MASK = np.empty(0, dtype=np.uint8)


def _keep_bytes(keep):
    return _NO_MASK if keep is None else np.ascontiguousarray(keep).reshape(-1).view(np.uint8)
