"""Fused per-row KL divergence: KL(teacher || student) over the last axis.

An evaluation job compares a teacher's and a student's output distributions
row by row, and often holds them as logits. Turning logits into log-probabilities
first (``log_softmax``) would write a full-size temporary for each input; this
kernel instead normalises every row on the fly, in three passes over the row
while it sits in cache: the row maximum, the sum of exponentials, then the KL
terms. Nothing but the per-row output, which the caller passes in, is written.

Three layers, bottom to top:

1. Per-element math: :c:func:`log_prob` here, and the KL terms of ``kl_math.h``,
   the same functions ``kl_div`` uses, so the special values (0 log 0 = 0,
   q = 0 where p > 0 gives +inf, NaN for values outside the domain) agree.
2. Row functions: the log-sum-exp constants of a row (:c:func:`row_side`) and
   the float64 sum of a row's KL terms (:c:func:`row_kl`).
3. The Python-facing wrapper :func:`kl_div_rows_2d`: ``prange`` over rows.

Every row is summed in column order on one thread, so the result of a row does
not depend on the thread count or on which other rows share the call.
"""
from cython.parallel cimport prange
from libc.math cimport exp, log, INFINITY

from lucid._ext._openmp_helpers cimport effective_n_threads

cdef extern from "kl_math.h" nogil:
    double lucid_kl_elem_f64(double x, double p)
    double lucid_kl_elem_log_target_f64(double x, double logp)

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


cdef inline double log_prob(double v, Side side) noexcept nogil:
    """Log-probability of one value of a row."""
    if side.kind == PROBS:
        # log 0 = -inf (a class the distribution rules out); a negative
        # probability gives NaN, outside the domain and never clipped.
        return log(v)
    return (v * side.scale - side.max) - side.log_sum


cdef Side row_side(const value_t[:, :] a, Py_ssize_t r, int kind, double scale) noexcept nogil:
    """The constants that turn row ``r`` of ``a`` into log-probabilities."""
    cdef Side side
    cdef Py_ssize_t j
    cdef double v, top = -INFINITY, total = 0.0
    side.kind = kind
    side.scale = 1.0
    side.max = 0.0
    side.log_sum = 0.0
    if kind != LOGITS:
        return side
    side.scale = scale
    for j in range(a.shape[1]):
        v = a[r, j] * scale
        # A NaN never compares greater, so it is skipped here but reaches the
        # sum below and makes the whole row NaN, as log_softmax does.
        if v > top:
            top = v
    # Subtracting the maximum keeps every exponential <= 1, so nothing
    # overflows; a row of all -inf gives exp(-inf - -inf) = NaN, as log_softmax.
    for j in range(a.shape[1]):
        total += exp(a[r, j] * scale - top)
    side.max = top
    side.log_sum = log(total)
    return side


cdef double row_kl(const student_t[:, :] student, const teacher_t[:, :] teacher, Py_ssize_t r,
                   int student_kind, int teacher_kind, double scale) noexcept nogil:
    """KL(teacher || student) of row ``r``: the float64 sum of its terms, in column order."""
    cdef Side s = row_side(student, r, student_kind, scale)
    cdef Side t = row_side(teacher, r, teacher_kind, scale)
    cdef Py_ssize_t j
    cdef double acc = 0.0
    # The teacher's kind picks the term outside the loop: probabilities enter
    # as p, the other kinds as log p (kl_div's log_target=True), which keeps
    # tiny probabilities exact instead of rounding them through exp and log.
    if teacher_kind == PROBS:
        for j in range(student.shape[1]):
            acc += lucid_kl_elem_f64(log_prob(student[r, j], s), teacher[r, j])
    else:
        for j in range(student.shape[1]):
            acc += lucid_kl_elem_log_target_f64(log_prob(student[r, j], s),
                                                log_prob(teacher[r, j], t))
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
    cdef int n_threads = effective_n_threads(rows * student.shape[1], MIN_ELEMENTS_PER_THREAD)
    with nogil:
        if n_threads > 1:
            for r in prange(rows, schedule="static", num_threads=n_threads):
                out[r] = row_kl(student, teacher, r, student_kind, teacher_kind, scale)
        else:
            # One thread: stay out of OpenMP entirely (cheap, and fork-safe).
            for r in range(rows):
                out[r] = row_kl(student, teacher, r, student_kind, teacher_kind, scale)
