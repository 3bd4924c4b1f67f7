"""Array-level row kernel: numpy arrays in, per-row KL, argmaxes and label log-probabilities out.

The wrapper describes each ``(..., classes)`` array to the kernel of
``_rowwise`` by its address, storage type and byte strides: the kernel reads
every layout (strided, reversed, leading axes that do not merge) and every
real dtype in place, so nothing input-sized is copied. Only arrays the kernel
cannot read directly (misaligned buffers, non-native byte order, long
double) are converted first.
"""
import math

import numpy as np

from lucid._ext import _rowwise, _simd
from lucid._ext._openmp_helpers import effective_n_threads
from lucid._ext.strided import _merged_axes as merged_axes

KINDS = tuple(_rowwise.KIND_CODES)

# (kind, itemsize) -> the kernel's storage code.
_STORAGE = {("f", 4): 0, ("f", 8): 1, ("f", 2): 2,
            ("i", 1): 3, ("i", 2): 4, ("i", 4): 5, ("i", 8): 6,
            ("u", 1): 7, ("u", 2): 8, ("u", 4): 9, ("u", 8): 10}


def narrow(*arrays):
    """Whether every array's values are exactly float32 values (the kernel's looser exponential then)."""
    return all(a.dtype.itemsize <= 2 or a.dtype == np.float32 for a in arrays)


def _readable(array):
    """``array``, or a copy the kernel can read (aligned, native order, a known storage).

    A buffer at an odd byte offset (``np.frombuffer(..., offset=1)``) would be
    read through misaligned pointers, which C does not allow; the evaluation job
    hands over one chunk at a time, so such copies stay chunk-sized.
    """
    dtype = array.dtype
    if (dtype.kind, dtype.itemsize) not in _STORAGE:
        return array.astype(np.float64)
    if not dtype.isnative:
        return array.astype(dtype.newbyteorder("="))
    return array if array.flags.aligned else array.copy()


def _describe(array, lead_strides):
    storage = _STORAGE[(array.dtype.kind, array.dtype.itemsize)]
    return (array.__array_interface__["data"][0], storage, array.strides[-1], tuple(lead_strides))


def compare_rows(students, teacher, student_kind, teacher_kind, temperature, *, kl,
                 labels=None, ignore_index=-100, student_argmax=None, teacher_argmax=None,
                 student_logprob=None, teacher_logprob=None):
    """Fill the per-row outputs of several students against one teacher.

    ``students`` is a list of arrays of the teacher's shape ``(..., classes)``
    (at least one dimension). Outputs are C-contiguous arrays: ``kl`` float64
    and ``student_argmax`` int64 of ``(len(students), rows)``, ``teacher_argmax``
    int64 of ``(rows,)``; the log-probabilities, float64, only with ``labels``
    (int64, C-contiguous, ``(rows,)``, every value in range or ``ignore_index``).
    Rows are the C-order indices of ``teacher.shape[:-1]``. Kinds and
    temperature are checked by the caller.
    """
    arrays = [_readable(a) for a in [teacher, *students]]
    lead_shape, lead_strides = merged_axes(teacher.shape[:-1], [a.strides[:-1] for a in arrays])
    specs = [_describe(a, s) for a, s in zip(arrays, lead_strides)]
    rows = math.prod(teacher.shape[:-1])
    # Decided once here: every row reads the teacher and each student.
    n_threads = effective_n_threads(rows * teacher.shape[-1] * len(arrays),
                                    _rowwise.MIN_WORK_PER_THREAD)

    def two_d(a):
        return None if a is None else a.reshape(-1, rows)

    _rowwise.compare_rows(specs[0], specs[1:], tuple(lead_shape), teacher.shape[-1],
                          _rowwise.KIND_CODES[teacher_kind], _rowwise.KIND_CODES[student_kind],
                          1.0 / temperature, narrow(*arrays),
                          _simd.SIMD_LEVELS.index(_simd.simd_level()),
                          n_threads,
                          labels, ignore_index, two_d(kl), two_d(student_argmax),
                          two_d(teacher_argmax), two_d(student_logprob), two_d(teacher_logprob))


def kl_div_rows(student, teacher, student_kind, teacher_kind, temperature, out):
    """Write KL(teacher || student) over the last axis of each row into ``out``.

    ``student`` and ``teacher`` are arrays of one shape ``(..., classes)`` with
    at least one dimension; ``out`` is a C-contiguous float64 array of
    ``prod(shape[:-1])`` elements. Kinds and temperature are checked by the caller.
    """
    compare_rows([student], teacher, student_kind, teacher_kind, temperature, kl=out)
    return out
