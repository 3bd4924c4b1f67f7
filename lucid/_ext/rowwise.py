"""Array-level per-row KL divergence: numpy arrays in, per-row float64 values out.

The wrapper hands 2-D views of ``(..., classes)`` arrays to the fused row kernel
of ``_rowwise``. Leading axes are merged into one row axis when that is a view;
otherwise the array is walked as a sequence of 2-D views. Either way nothing
input-sized is copied for float32 and float64 inputs.
"""
import itertools

import numpy as np

from lucid._ext import _rowwise

KINDS = tuple(_rowwise.KIND_CODES)


def _kernel_dtype(dtype):
    """The storage the kernel reads: float32 and float64 as they are, others converted."""
    if dtype in (np.float32, np.float64):
        return dtype
    # float16 widens exactly to float32; integers are converted to float64.
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(np.float64)


def _kernel_array(array):
    """``array`` in a storage the kernel reads; unaligned buffers are copied.

    A buffer at an odd byte offset (``np.frombuffer(..., offset=1)``) would be
    read through misaligned pointers, which C does not allow; the evaluation job
    hands over one chunk at a time, so the copy stays chunk-sized.
    """
    return array.astype(_kernel_dtype(array.dtype), copy=not array.flags.aligned)


def _rows_merge(array):
    """True when the leading axes merge into one row axis as a view (C order among them)."""
    lead = [(n, stride) for n, stride in zip(array.shape[:-1], array.strides[:-1]) if n != 1]
    return all(outer == inner * n for (_, outer), (n, inner) in zip(lead, lead[1:]))


def _row_pieces(arrays, rows, classes):
    """Aligned 2-D ``(n, classes)`` views of same-shape arrays, rows in C order."""
    if all(_rows_merge(a) for a in arrays):
        return [tuple(a.reshape(rows, classes) for a in arrays)]
    # Leading axes that do not merge (e.g. a transposed batch): one 2-D view
    # per index of all but the last leading axis.
    lead = arrays[0].shape[:-2]
    return [tuple(a[index] for a in arrays)
            for index in itertools.product(*(range(n) for n in lead))]


def kl_div_rows(student, teacher, student_kind, teacher_kind, temperature, out):
    """Write KL(teacher || student) over the last axis of each row into ``out``.

    ``student`` and ``teacher`` are arrays of one shape ``(..., classes)`` with
    at least two dimensions; ``out`` is a C-contiguous float64 array of
    ``prod(shape[:-1])`` elements. Kinds and temperature are checked by the caller.
    """
    classes = student.shape[-1]
    rows = out.size
    student = _kernel_array(student)
    teacher = _kernel_array(teacher)
    flat_out = out.reshape(-1)
    start = 0
    for s, t in _row_pieces((student, teacher), rows, classes):
        n = s.shape[0]
        _rowwise.kl_div_rows_2d(s, t, flat_out[start:start + n], _rowwise.KIND_CODES[student_kind],
                                _rowwise.KIND_CODES[teacher_kind], 1.0 / temperature)
        start += n
    return out
