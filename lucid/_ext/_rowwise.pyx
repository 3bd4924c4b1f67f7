"""Fused per-row KL divergence: KL(teacher || student) over the last axis.

An evaluation job compares a teacher's and a student's output distributions
row by row, and often holds them as logits. Turning logits into log-probabilities
first (``log_softmax``) would write a full-size temporary for each input; this
kernel instead normalises every row on the fly, in passes over the row while
it sits in cache: the row maximum, the sum of exponentials, then the KL terms.
Nothing but the per-row output, which the caller passes in, is written.

Three layers, bottom to top:

1. Runs over contiguous chunks of a row, from the SIMD table of ``_simd``
   (``kl_simd.h``): the maximum, the sum of exponentials, and ``kl_div``'s
   own sum of KL terms, so the special values (0 log 0 = 0, q = 0 where
   p > 0 gives +inf, NaN for values outside the domain) agree with it.
2. Row functions: a row is read in chunks of ``CHUNK`` values, widened to
   float64 (and turned into log-probabilities) in per-thread buffers, and
   each chunk handed to the runs; :c:func:`row_side` gives the log-sum-exp
   constants of a row, :c:func:`row_kl` its float64 sum of KL terms.
3. The Python-facing wrapper :func:`kl_div_rows_2d`: ``prange`` over rows.

Every row is summed in a fixed order (chunks in column order, lanes within a
chunk as in ``kl_div``) on one thread, so the result of a row does not depend
on the thread count or on which other rows share the call.
"""
from cython.parallel cimport prange
from libc.math cimport log, INFINITY

from lucid._ext._openmp_helpers cimport effective_n_threads
from lucid._ext._simd cimport kl_runs, lucid_kl_runs

# Storage types of the inputs; every value is widened to double on reading.
ctypedef fused student_t:
    float
    double

ctypedef fused teacher_t:
    float
    double

ctypedef fused value_t:
    float
    double

cdef enum:
    LOGITS = 0
    LOG_PROBS = 1
    PROBS = 2
    # Values of a row handled at once: three float64 buffers of this size
    # (96 KiB) per thread, well inside L2 together with the row being read.
    CHUNK = 4096
    # Below this many elements per thread an OpenMP fork/join costs more than it saves.
    MIN_ELEMENTS_PER_THREAD = 65536

KIND_CODES = {"logits": LOGITS, "log-probs": LOG_PROBS, "probs": PROBS}


cdef struct Side:
    # How one row of one input becomes log-probabilities:
    # log p_j = (v_j * scale - max) - log_sum for logits and log-probs (scale 1,
    # max 0, log_sum 0 for log-probs, so v_j exactly); log v_j for probs.
    int kind
    double scale
    double max
    double log_sum


cdef void widen(const value_t[:, :] a, Py_ssize_t r, Py_ssize_t c0, Py_ssize_t n,
                double *out) noexcept nogil:
    """``out[:n]`` = row ``r`` of ``a`` from column ``c0``, in float64."""
    cdef Py_ssize_t j
    cdef const value_t *p
    if a.strides[1] == sizeof(value_t):
        p = &a[r, c0]  # contiguous: a plain loop, which the compiler vectorises
        for j in range(n):
            out[j] = p[j]
    else:
        for j in range(n):
            out[j] = a[r, c0 + j]


cdef void log_probs(const lucid_kl_runs *runs, const value_t[:, :] a, Py_ssize_t r,
                    Py_ssize_t c0, Py_ssize_t n, Side side, double *out,
                    double *scratch) noexcept nogil:
    """``out[:n]``: log-probabilities of row ``r`` of ``a`` from column ``c0``."""
    cdef Py_ssize_t j
    cdef const value_t *p
    if side.kind == PROBS:
        # log 0 = -inf (a class the distribution rules out); a negative
        # probability gives NaN, outside the domain and never clipped.
        widen(a, r, c0, n, scratch)
        runs.log_f64(scratch, out, n)
        return
    if a.strides[1] == sizeof(value_t):
        p = &a[r, c0]  # contiguous: a plain loop, which the compiler vectorises
        for j in range(n):
            out[j] = (p[j] * side.scale - side.max) - side.log_sum
    else:
        for j in range(n):
            out[j] = (a[r, c0 + j] * side.scale - side.max) - side.log_sum


cdef Side row_side(const lucid_kl_runs *runs, const value_t[:, :] a, Py_ssize_t r, int kind,
                   double scale, double *buf) noexcept nogil:
    """The constants that turn row ``r`` of ``a`` into log-probabilities."""
    cdef Side side
    cdef Py_ssize_t c0, n, cols = a.shape[1]
    cdef double top = -INFINITY, chunk_top, total = 0.0
    side.kind = kind
    side.scale = 1.0
    side.max = 0.0
    side.log_sum = 0.0
    if kind != LOGITS:
        return side
    side.scale = scale
    # scale > 0 and rounding is monotonic, so the largest v * scale is the
    # largest v times scale. A NaN never compares greater, so it is skipped
    # here but reaches the sum below and makes the whole row NaN, as
    # log_softmax does.
    c0 = 0
    while c0 < cols:
        n = min(<Py_ssize_t>CHUNK, cols - c0)
        widen(a, r, c0, n, buf)
        chunk_top = runs.max_f64(buf, n)
        if chunk_top > top:
            top = chunk_top
        c0 += n
    top = top * scale
    # Subtracting the maximum keeps every exponential <= 1, so nothing
    # overflows; a row of all -inf gives exp(-inf - -inf) = NaN, as log_softmax.
    c0 = 0
    while c0 < cols:
        n = min(<Py_ssize_t>CHUNK, cols - c0)
        widen(a, r, c0, n, buf)
        total += runs.sum_exp_f64(buf, n, scale, top)
        c0 += n
    side.max = top
    side.log_sum = log(total)
    return side


cdef double row_kl(const lucid_kl_runs *runs, const student_t[:, :] student,
                   const teacher_t[:, :] teacher, Py_ssize_t r, int student_kind,
                   int teacher_kind, double scale) noexcept nogil:
    """KL(teacher || student) of row ``r``: the float64 sum of its terms, chunk by chunk."""
    cdef double xbuf[CHUNK]
    cdef double tbuf[CHUNK]
    cdef double scratch[CHUNK]
    cdef Side s = row_side(runs, student, r, student_kind, scale, scratch)
    cdef Side t = row_side(runs, teacher, r, teacher_kind, scale, scratch)
    cdef Py_ssize_t c0, n, cols = student.shape[1]
    cdef double acc = 0.0
    # Probabilities enter as p, the other kinds as log p (kl_div's
    # log_target=True), which keeps tiny probabilities exact instead of
    # rounding them through exp and log.
    cdef bint log_target = teacher_kind != PROBS
    c0 = 0
    while c0 < cols:
        n = min(<Py_ssize_t>CHUNK, cols - c0)
        log_probs(runs, student, r, c0, n, s, xbuf, scratch)
        if log_target:
            log_probs(runs, teacher, r, c0, n, t, tbuf, scratch)
        else:
            widen(teacher, r, c0, n, tbuf)
        acc += runs.sum_f64(xbuf, tbuf, n, log_target)
        c0 += n
    return acc


def kl_div_rows_2d(const student_t[:, :] student,  # IN, (rows, classes)
                   const teacher_t[:, :] teacher,  # IN, same shape as student
                   double[::1] out,                # OUT, (rows,)
                   int student_kind,               # a value of KIND_CODES
                   int teacher_kind,               # a value of KIND_CODES
                   double scale):                  # 1 / temperature, applied to logits
    """Write KL(teacher || student) of every row of two 2-D views into ``out``.

    The caller checks shapes, kinds and the scale; this loop trusts them.
    """
    cdef Py_ssize_t rows = student.shape[0]
    cdef Py_ssize_t r
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef int n_threads = effective_n_threads(rows * student.shape[1], MIN_ELEMENTS_PER_THREAD)
    with nogil:
        if n_threads > 1:
            for r in prange(rows, schedule="static", num_threads=n_threads):
                out[r] = row_kl(runs, student, teacher, r, student_kind, teacher_kind, scale)
        else:
            # One thread: stay out of OpenMP entirely (cheap, and fork-safe).
            for r in range(rows):
                out[r] = row_kl(runs, student, teacher, r, student_kind, teacher_kind, scale)
