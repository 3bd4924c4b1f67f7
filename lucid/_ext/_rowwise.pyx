"""The per-distribution (row) kernel's Python face: rows of any layout, in ``prange``.

An evaluation job compares a teacher's and students' output distributions row
by row, often as logits. ``row_kernel.h`` turns a teacher's row and each
student's row into the KL, both argmaxes and the label's log-probabilities in
one reading of each row, block by block in L1 (its header comment gives the
layers and the accuracy argument). This module only fills in the job, gives
every thread its own work space on the heap (small thread stacks must work)
and runs the rows in parallel.

Rows are the C-order indices of the leading axes; the kernel finds each row
from the axes' strides itself, so layouts whose leading axes do not merge
cost nothing extra and allocate nothing per row.
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from lucid._ext._openmp_helpers cimport record_parallel

from lucid._ext._row_kernel cimport (lucid_row_compare_fn, lucid_row_compare_for,
                                     lucid_row_input, lucid_row_job, lucid_row_work_bytes)

KIND_CODES = {"logits": 0, "log-probs": 1, "probs": 2}

cdef enum:
    # Below this many elements per thread an OpenMP fork/join costs more than it saves.
    MIN_ELEMENTS_PER_THREAD = 65536


cdef void fill_input(lucid_row_input *into, object spec):
    """``spec``: (address, dtype code, column stride, leading strides), all in bytes."""
    address, dtype, col_stride, row_strides = spec
    into.data = <const char *><size_t>address
    into.dtype = dtype
    into.col_stride = col_stride
    for d, stride in enumerate(row_strides):
        into.row_strides[d] = stride


cdef double *double_or_null(double[:, ::1] a):
    return NULL if a is None else &a[0, 0]


cdef int64_t *index_or_null(int64_t[:, ::1] a):
    return NULL if a is None else &a[0, 0]


# The wrapper asks effective_n_threads for this kernel's thread count with it.
MIN_WORK_PER_THREAD = MIN_ELEMENTS_PER_THREAD


def compare_rows(object teacher,          # IN, (address, dtype, col stride, lead strides)
                 list students,           # IN, one such tuple per student
                 tuple lead_shape,        # leading axes (rows in their C order)
                 Py_ssize_t cols,
                 int teacher_kind, int student_kind,  # values of KIND_CODES
                 double scale,            # 1 / temperature, applied to logits
                 bint narrow,             # every input float32 or narrower
                 int level,               # index of the SIMD level in _simd.SIMD_LEVELS
                 int n_threads,           # from effective_n_threads; 1: no OpenMP region
                 const int64_t[::1] labels,  # IN, (rows,) or None
                 int64_t ignore_index,
                 double[:, ::1] kl,       # OUT, (students, rows)
                 int64_t[:, ::1] student_argmax=None,   # OUT, (students, rows) or None
                 int64_t[:, ::1] teacher_argmax=None,   # OUT, (1, rows) or None
                 double[:, ::1] student_logprob=None,   # OUT, (students, rows) or None
                 double[:, ::1] teacher_logprob=None):  # OUT, (1, rows) or None
    """Fill the outputs for every row; the caller checks shapes, kinds and labels.

    Raises ``MemoryError`` if a thread's work space cannot be allocated.
    """
    cdef lucid_row_job job
    cdef Py_ssize_t rows = kl.shape[1], r
    cdef int n_students = len(students), k, failed = 0
    cdef int *failed_at = &failed
    cdef char *work = NULL
    cdef size_t work_bytes = lucid_row_work_bytes(n_students)
    cdef lucid_row_compare_fn compare = lucid_row_compare_for(level)
    if rows == 0:
        return
    memset(&job, 0, sizeof(job))
    fill_input(&job.teacher, teacher)
    job.n_students = n_students
    job.teacher_kind = teacher_kind
    job.student_kind = student_kind
    job.lead_ndim = len(lead_shape)
    for k, n in enumerate(lead_shape):
        job.lead_shape[k] = n
    job.cols = cols
    job.scale = scale
    job.narrow = narrow
    job.labels = NULL if labels is None else &labels[0]
    job.ignore_index = ignore_index
    job.rows = rows
    job.kl = &kl[0, 0]
    job.student_argmax = index_or_null(student_argmax)
    job.teacher_argmax = index_or_null(teacher_argmax)
    job.student_logprob = double_or_null(student_logprob)
    job.teacher_logprob = double_or_null(teacher_logprob)
    cdef lucid_row_input *inputs = <lucid_row_input *>malloc(n_students * sizeof(lucid_row_input))
    if inputs == NULL:
        raise MemoryError("compare_rows: cannot allocate the students' descriptions")
    try:
        for k in range(n_students):
            fill_input(&inputs[k], students[k])
        job.students = inputs
        with nogil:
            if n_threads > 1:
                record_parallel()
                with parallel(num_threads=n_threads):
                    # Per-thread work space on the heap, not the thread's stack.
                    work = <char *>malloc(work_bytes)
                    if work == NULL:
                        failed_at[0] = 1
                    for r in prange(rows, schedule="static"):
                        if work != NULL:
                            compare(&job, r, work)
                    free(work)
            else:
                # One thread: stay out of OpenMP entirely (cheap, and fork-safe).
                work = <char *>malloc(work_bytes)
                if work == NULL:
                    failed = 1
                else:
                    for r in range(rows):
                        compare(&job, r, work)
                    free(work)
    finally:
        free(inputs)
    if failed:
        raise MemoryError(f"compare_rows: cannot allocate {work_bytes} bytes of work space")
