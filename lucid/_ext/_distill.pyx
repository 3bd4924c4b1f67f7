"""OpenMP kernels of the fused distillation loss: per-row divergences and gradients from logits.

A row is a pair of logit rows over the same classes, the student's and the
teacher's. Neither softmax is ever written out. The forward hands each pair to
the row kernel (``row_kernel.h``, the evaluation job's per-distribution
kernel), which finds both maxima, then reads the pair once more while it sits
in cache for both normalisers and KL(p || q) (the reverse KL: the same with
the sides swapped). The JSD's pass follows (its mixture needs both
normalisers first). A handful of float64 constants per row are saved
(``stats``); the gradient rows are computed from the logits and those
constants, and, in the forward's fused gradient, from the exponentials the row
kernel kept as float32 (AVX-512).

Three layers, bottom to top:

1. The row kernel, and runs over one contiguous row (``distill_runs.h``: the
   JSD pass and the gradients, compiled per SIMD level; the level is
   ``_simd``'s, passed in by the caller; at AVX-512 the float32 runs are
   ``distill_avx512.h``'s, on the row kernel's table-driven exponential,
   ``exp_avx512.h``, and ``log_avx512.h``).
2. Row functions: a row that is not contiguous in the compute precision
   (strided, float16, or a dtype mix) is gathered into a per-thread heap
   buffer of one row, so nothing input-sized is allocated and threads with
   small stacks work; gradients for such rows are scattered back the same way.
3. The Python-facing wrappers :func:`forward_rows` and :func:`gradient_rows`:
   the rows are split into one contiguous range per thread (what
   ``schedule="static"`` does), each range handled with its own buffers.

Every row is computed by one thread in a fixed order, so a row's result does
not depend on the thread count. Masked rows (``keep[r] == 0``) are never
read: their constants and gradient rows are zeros.
"""
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc
from cython.parallel cimport prange
from libc.math cimport log
from libc.stdint cimport uint8_t, uint16_t
from libc.string cimport memset

from lucid._ext._openmp_helpers cimport record_parallel
from lucid._ext._row_kernel cimport (LUCID_ROW_F32, LUCID_ROW_F64, LUCID_ROW_LOGITS,
                                     lucid_row_input, lucid_row_job, lucid_row_pair_fn,
                                     lucid_row_pair_for, lucid_row_pair_io, lucid_row_work_bytes)

cdef extern from "kl_math.h" nogil:
    float lucid_half_to_float(uint16_t h)
    uint16_t lucid_float_to_half(float f)

cdef extern from "distill_runs.h" nogil:
    ctypedef struct lucid_distill_side:
        double max
        double log_sum
    ctypedef struct lucid_grad_params:
        double inv_t
        lucid_distill_side own
        lucid_distill_side other
        double coef
        double k
        double weight_own
        int difference
        int kept
        const float *kept_other
        const double *own_exp
    ctypedef struct lucid_distill_runs:
        void (*jsd_f32)(const float *s, const float *t, Py_ssize_t n, double inv_t,
                        lucid_distill_side student, lucid_distill_side teacher, double beta,
                        double *kl_p_m, double *kl_q_m) noexcept nogil
        void (*jsd_f64)(const double *s, const double *t, Py_ssize_t n, double inv_t,
                        lucid_distill_side student, lucid_distill_side teacher, double beta,
                        double *kl_p_m, double *kl_q_m) noexcept nogil
        void (*grad_f32)(const float *own, const float *other, float *out, Py_ssize_t n,
                         const lucid_grad_params *params) noexcept nogil
        void (*grad_f64)(const double *own, const double *other, double *out, Py_ssize_t n,
                         const lucid_grad_params *params) noexcept nogil
    const lucid_distill_runs *lucid_distill_runs_for(int level)
    int lucid_distill_log16_for_tests(const double *m, double *out, Py_ssize_t n)

cdef enum:
    # Storage kinds of an operand; the compute precision is F32 or F64.
    F16 = 0
    F32 = 1
    F64 = 2
    KL = 0
    REVERSE_KL = 1
    JSD = 2
    # lucid_row_pair_io.kept
    KEPT_F32 = 1
    KEPT_F64 = 2
    # Below this many elements per thread an OpenMP fork/join costs more than it saves.
    MIN_ELEMENTS_PER_THREAD = 32768

# Columns of the per-row constants: both sides' maximum and log-sum-exp (of
# the logits over T), the divergence, and for the JSD its two KL terms.
cdef enum:
    MAX_S = 0
    LOG_SUM_S = 1
    MAX_T = 2
    LOG_SUM_T = 3
    DIVERGENCE = 4
    KL_P_M = 5
    KL_Q_M = 6
    N_STATS_ = 7

N_STATS = N_STATS_
STAT_COLUMNS = {"divergence": DIVERGENCE, "kl_p_m": KL_P_M, "kl_q_m": KL_Q_M}
KIND_CODES = {"float16": F16, "float32": F32, "float64": F64}
DIVERGENCE_CODES = {"kl": KL, "reverse_kl": REVERSE_KL, "jsd": JSD}


cdef struct Operand:
    # A 2-D strided (rows, classes) view: strides in bytes, any sign, 0 for broadcasting.
    char *data
    Py_ssize_t row_stride
    Py_ssize_t col_stride
    int kind


cdef struct Job:
    # Everything a range of rows needs; the same for every thread.
    const lucid_distill_runs *runs
    lucid_row_pair_fn pair
    # The row kernel keeps float32 exps (its AVX-512 loops: float32 rows at
    # that level), else float64 ones.
    bint keeps_f32
    Operand student
    Operand teacher
    Operand out
    Py_ssize_t cols
    int compute
    int divergence
    double inv_t
    double beta
    const uint8_t *keep          # NULL: every row is kept
    double *stats                # (rows, N_STATS)
    const double *coef           # the gradient's factor: one value, or one per row
    Py_ssize_t coef_stride       # 0 or 1
    bint wrt_teacher


cdef Operand make_operand(tuple spec):
    """``(address, row_stride, col_stride, kind)`` from the wrapper, as an Operand."""
    cdef Operand a
    a.data = <char *><size_t>spec[0]
    a.row_stride = spec[1]
    a.col_stride = spec[2]
    a.kind = spec[3]
    return a


cdef inline Py_ssize_t itemsize(int kind) noexcept nogil:
    return 2 if kind == F16 else (4 if kind == F32 else 8)


cdef inline bint is_direct(Operand a, int compute) noexcept nogil:
    """Whether rows of ``a`` can be handed to the runs as they are."""
    return a.kind == compute and a.col_stride == itemsize(compute)


cdef const char *load_row(Operand a, Py_ssize_t r, Py_ssize_t n, int compute,
                          char *buf) noexcept nogil:
    """Row ``r`` of ``a`` as ``n`` contiguous values of the compute type (in ``buf`` if gathered)."""
    cdef const char *row = a.data + r * a.row_stride
    cdef Py_ssize_t j, cs = a.col_stride
    cdef float *fbuf = <float *>buf
    cdef double *dbuf = <double *>buf
    if is_direct(a, compute):
        return row
    # float16 widens exactly to float32 and float32 to float64.
    if compute == F32:
        if a.kind == F16:
            for j in range(n):
                fbuf[j] = lucid_half_to_float((<const uint16_t *>(row + j * cs))[0])
        else:
            for j in range(n):
                fbuf[j] = (<const float *>(row + j * cs))[0]
    elif a.kind == F16:
        for j in range(n):
            dbuf[j] = lucid_half_to_float((<const uint16_t *>(row + j * cs))[0])
    elif a.kind == F32:
        for j in range(n):
            dbuf[j] = (<const float *>(row + j * cs))[0]
    else:
        for j in range(n):
            dbuf[j] = (<const double *>(row + j * cs))[0]
    return buf


cdef void store_row(Operand a, Py_ssize_t r, Py_ssize_t n, int compute,
                    const char *values) noexcept nogil:
    """Write ``n`` compute-type values into row ``r`` of ``a``, in its storage kind."""
    cdef char *row = a.data + r * a.row_stride
    cdef Py_ssize_t j, cs = a.col_stride
    cdef const float *f = <const float *>values
    cdef const double *d = <const double *>values
    for j in range(n):
        if a.kind == F16:
            # From double this rounds twice (to float, then to half): at most
            # one half ulp off in a tie, only for a float16 input mixed with float64.
            (<uint16_t *>(row + j * cs))[0] = lucid_float_to_half(
                f[j] if compute == F32 else <float>d[j])
        elif a.kind == F32:
            (<float *>(row + j * cs))[0] = f[j] if compute == F32 else <float>d[j]
        else:
            (<double *>(row + j * cs))[0] = d[j]


cdef void zero_row(Operand a, Py_ssize_t r, Py_ssize_t n) noexcept nogil:
    """Row ``r`` of ``a`` set to +0.0 (all bits zero, in every storage kind)."""
    cdef char *row = a.data + r * a.row_stride
    cdef Py_ssize_t j, size = itemsize(a.kind)
    if a.col_stride == size:
        memset(row, 0, n * size)
    else:
        for j in range(n):
            memset(row + j * a.col_stride, 0, size)


cdef const char *next_row(Operand a, Py_ssize_t r, Py_ssize_t stop, int compute) noexcept nogil:
    """Where the row after ``r`` starts, for prefetching (NULL when there is none to read in place)."""
    if r + 1 < stop and is_direct(a, compute):
        return a.data + (r + 1) * a.row_stride
    return NULL


cdef struct Pair:
    # One thread's row-kernel job of one pair of rows: its inputs' data are set
    # to the pair in hand, its KL goes to ``kl``, ``work`` is its work space.
    lucid_row_job job
    lucid_row_input student
    double kl
    char *work


cdef void pair_setup(Pair *pair, const Job *job, char *work) noexcept nogil:
    """A row-kernel job for this job's rows: both sides logits, contiguous, one student."""
    memset(pair, 0, sizeof(Pair))
    pair.job.teacher.dtype = LUCID_ROW_F32 if job.compute == F32 else LUCID_ROW_F64
    pair.job.teacher.col_stride = itemsize(job.compute)
    pair.student = pair.job.teacher
    pair.job.students = &pair.student
    pair.job.n_students = 1
    pair.job.teacher_kind = LUCID_ROW_LOGITS
    pair.job.student_kind = LUCID_ROW_LOGITS
    pair.job.cols = job.cols
    pair.job.scale = job.inv_t
    pair.job.narrow = job.compute == F32
    pair.job.rows = 1
    pair.job.kl = &pair.kl
    pair.work = work


cdef void forward_row(const Job *job, Pair *pair, Py_ssize_t r, Py_ssize_t stop, char *sbuf,
                      char *tbuf, char *gbuf, void *kept) noexcept nogil:
    """The constants and divergence of row ``r`` into ``job.stats[r]`` (and its gradient row).

    ``kept``: a row buffer for the exps the row kernel keeps for the fused
    gradient (the other side's float32 ones, or the own side's float64 ones;
    ``Job.keeps_f32``), or NULL.
    """
    cdef Py_ssize_t n = job.cols
    cdef const char *s = load_row(job.student, r, n, job.compute, sbuf)
    cdef const char *t = load_row(job.teacher, r, n, job.compute, tbuf)
    cdef double *stats = job.stats + r * N_STATS_
    cdef lucid_row_pair_io io
    cdef lucid_distill_side student, teacher
    cdef double kl_p_m = 0.0, kl_q_m = 0.0
    # KL(q || p), the reverse KL, is the row kernel's KL with the sides swapped;
    # ``own`` is the student's side in its answers (0 teacher, 1 student).
    cdef bint swap = job.divergence == REVERSE_KL
    cdef int own = 0 if swap else 1
    cdef char *grad_dest = NULL
    memset(&io, 0, sizeof(io))
    io.seed_max = 1
    if job.out.data != NULL and job.divergence != JSD:
        # The row kernel keeps its exps for the student's gradient. float32:
        # the student's in its gradient row (in place, or the scatter buffer),
        # written and faulted in while the pass computes, and for the KL's
        # difference form the teacher's in ``kept``. float64: the student's in
        # ``kept``.
        grad_dest = (job.out.data + r * job.out.row_stride if is_direct(job.out, job.compute)
                     else gbuf)
        if job.keeps_f32 and swap:
            io.keep_teacher = <float *>grad_dest
        elif job.keeps_f32:
            io.keep_student = <float *>grad_dest
            io.keep_teacher = <float *>kept
        elif swap:
            io.keep_teacher_f64 = <double *>kept
        else:
            io.keep_student_f64 = <double *>kept
    io.ahead_teacher = next_row(job.student if swap else job.teacher, r, stop, job.compute)
    io.ahead_student = next_row(job.teacher if swap else job.student, r, stop, job.compute)
    pair.job.teacher.data = s if swap else t
    pair.student.data = t if swap else s
    job.pair(&pair.job, pair.work, &io)
    # The row kernel's shift is the raw maximum; inv_t > 0 and rounding is
    # monotonic, so max(v / T) = max(v) / T. A row of -inf or NaN gives NaN,
    # as log_softmax.
    student.max = io.shift[own] * job.inv_t
    student.log_sum = io.log_sum[own]
    teacher.max = io.shift[1 - own] * job.inv_t
    teacher.log_sum = io.log_sum[1 - own]
    stats[MAX_S] = student.max
    stats[LOG_SUM_S] = student.log_sum
    stats[MAX_T] = teacher.max
    stats[LOG_SUM_T] = teacher.log_sum
    if job.divergence != JSD:
        stats[DIVERGENCE] = pair.kl
    else:
        if job.compute == F32:
            job.runs.jsd_f32(<const float *>s, <const float *>t, n, job.inv_t, student, teacher,
                             job.beta, &kl_p_m, &kl_q_m)
        else:
            job.runs.jsd_f64(<const double *>s, <const double *>t, n, job.inv_t, student,
                             teacher, job.beta, &kl_p_m, &kl_q_m)
        stats[DIVERGENCE] = job.beta * kl_p_m + (1.0 - job.beta) * kl_q_m
    stats[KL_P_M] = kl_p_m
    stats[KL_Q_M] = kl_q_m
    if job.out.data != NULL:
        # The gradient while the row is still in cache: no second trip to
        # memory. Kept exps count only where they went to the buffers given.
        if grad_dest == NULL or io.kept != (KEPT_F32 if job.keeps_f32 else KEPT_F64):
            io.kept = 0
        gradient_row(job, r, s, t, gbuf, kept, io.kept)


cdef lucid_grad_params grad_params(const Job *job, Py_ssize_t r, int kept,
                                   const void *kept_row) noexcept nogil:
    """What the gradient run needs for row ``r`` (formulas in ``distill.py``)."""
    cdef const double *stats = job.stats + r * N_STATS_
    cdef lucid_distill_side student, teacher
    cdef lucid_grad_params g
    student.max = stats[MAX_S]
    student.log_sum = stats[LOG_SUM_S]
    teacher.max = stats[MAX_T]
    teacher.log_sum = stats[LOG_SUM_T]
    g.inv_t = job.inv_t
    g.own = teacher if job.wrt_teacher else student
    g.other = student if job.wrt_teacher else teacher
    g.coef = job.coef[r * job.coef_stride]
    g.k = stats[DIVERGENCE]
    g.weight_own = 0.0
    # What the row kernel kept (lucid_row_pair_io.kept), and where.
    g.kept = kept
    g.kept_other = <const float *>kept_row if kept == KEPT_F32 else NULL
    g.own_exp = <const double *>kept_row if kept == KEPT_F64 else NULL
    # KL(p || q): d/ds = (q - p) / T, d/dt = p (log p - log q - KL) / T; the
    # reverse KL swaps the roles. The JSD: d/ds = (1 - beta) q (log q - log m
    # - KL(q || m)) / T and d/dt = beta p (log p - log m - KL(p || m)) / T.
    g.difference = (job.divergence == KL) != job.wrt_teacher
    if job.divergence == JSD:
        g.difference = 0
        g.weight_own = job.beta if job.wrt_teacher else 1.0 - job.beta
        g.coef = g.coef * g.weight_own
        g.k = stats[KL_P_M] if job.wrt_teacher else stats[KL_Q_M]
    return g


cdef void gradient_row(const Job *job, Py_ssize_t r, const char *s, const char *t,
                       char *gbuf, const void *kept_row, int kept) noexcept nogil:
    """Gradient row ``r`` w.r.t. the student (or the teacher) from the loaded rows, into ``job.out``.

    ``kept`` says what the row kernel kept (``lucid_row_pair_io.kept``): the
    own side's float32 exps in the gradient row and the other's at
    ``kept_row``, or the own side's float64 exps at ``kept_row``; 0: nothing.
    """
    cdef Py_ssize_t n = job.cols
    cdef const char *own_row = t if job.wrt_teacher else s
    cdef const char *other_row = s if job.wrt_teacher else t
    cdef bint direct = is_direct(job.out, job.compute)
    cdef char *out = job.out.data + r * job.out.row_stride if direct else gbuf
    cdef lucid_grad_params g = grad_params(job, r, kept, kept_row)
    if job.compute == F32:
        job.runs.grad_f32(<const float *>own_row, <const float *>other_row, <float *>out, n, &g)
    else:
        job.runs.grad_f64(<const double *>own_row, <const double *>other_row, <double *>out, n,
                          &g)
    if not direct:
        store_row(job.out, r, n, job.compute, out)


cdef inline char *row_buffer(bint needed, Py_ssize_t cols, int compute) noexcept nogil:
    """A heap buffer of one row in the compute type, or NULL when not ``needed``."""
    return <char *>PyMem_RawMalloc(cols * itemsize(compute) + 1) if needed else NULL


cdef int forward_range(const Job *job, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Rows ``[start, stop)`` of the forward; 1 if a buffer could not be allocated."""
    cdef Py_ssize_t r
    cdef Pair pair
    cdef bint gather_s = not is_direct(job.student, job.compute)
    cdef bint gather_t = not is_direct(job.teacher, job.compute)
    cdef char *sbuf = row_buffer(gather_s, job.cols, job.compute)
    cdef char *tbuf = row_buffer(gather_t, job.cols, job.compute)
    cdef bint fused = job.out.data != NULL
    cdef bint scatter = fused and not is_direct(job.out, job.compute)
    cdef char *gbuf = row_buffer(scatter, job.cols, job.compute)
    # The exps the row kernel keeps for the student's gradient: the teacher's as
    # float32, or the student's as float64 (with a group of 16 lanes to spare).
    cdef bint keeps = fused and job.divergence != JSD
    cdef void *kept = (row_buffer(keeps, job.cols, F32) if job.keeps_f32
                       else row_buffer(keeps, job.cols + 16, F64))
    cdef char *work = <char *>PyMem_RawMalloc(lucid_row_work_bytes(1))
    cdef int failed = ((gather_s and sbuf == NULL) or (gather_t and tbuf == NULL)
                       or (scatter and gbuf == NULL) or (keeps and kept == NULL)
                       or work == NULL)
    if not failed:
        pair_setup(&pair, job, work)
        for r in range(start, stop):
            if job.keep != NULL and not job.keep[r]:
                memset(job.stats + r * N_STATS_, 0, N_STATS_ * sizeof(double))
                if job.out.data != NULL:
                    zero_row(job.out, r, job.cols)  # selected out: never computed
            else:
                forward_row(job, &pair, r, stop, sbuf, tbuf, gbuf, kept)
    PyMem_RawFree(work)
    PyMem_RawFree(kept)
    PyMem_RawFree(sbuf)
    PyMem_RawFree(tbuf)
    PyMem_RawFree(gbuf)
    return failed


cdef int gradient_range(const Job *job, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Rows ``[start, stop)`` of a gradient; 1 if a buffer could not be allocated."""
    cdef Py_ssize_t r, n = job.cols
    cdef bint gather_s = not is_direct(job.student, job.compute)
    cdef bint gather_t = not is_direct(job.teacher, job.compute)
    cdef bint scatter = not is_direct(job.out, job.compute)
    cdef char *sbuf = row_buffer(gather_s, n, job.compute)
    cdef char *tbuf = row_buffer(gather_t, n, job.compute)
    cdef char *gbuf = row_buffer(scatter, n, job.compute)
    cdef int failed = ((gather_s and sbuf == NULL) or (gather_t and tbuf == NULL)
                       or (scatter and gbuf == NULL))
    if not failed:
        for r in range(start, stop):
            if job.keep != NULL and not job.keep[r]:
                zero_row(job.out, r, n)  # selected out: never computed
            else:
                gradient_row(job, r, load_row(job.student, r, n, job.compute, sbuf),
                             load_row(job.teacher, r, n, job.compute, tbuf), gbuf, NULL, 0)
    PyMem_RawFree(sbuf)
    PyMem_RawFree(tbuf)
    PyMem_RawFree(gbuf)
    return failed


cdef void run(const Job *job, Py_ssize_t rows, bint gradient, int n_threads) except *:
    """Every row, in one contiguous range per thread (static schedule), GIL released."""
    cdef Py_ssize_t k
    cdef int failed = 0
    with nogil:
        if n_threads > 1:
            record_parallel()
            for k in prange(n_threads, schedule="static", num_threads=n_threads):
                if gradient:
                    failed += gradient_range(job, rows * k // n_threads,
                                             rows * (k + 1) // n_threads)
                else:
                    failed += forward_range(job, rows * k // n_threads,
                                            rows * (k + 1) // n_threads)
        elif gradient:
            # One thread: stay out of OpenMP entirely (cheap, and fork-safe).
            failed = gradient_range(job, 0, rows)
        else:
            failed = forward_range(job, 0, rows)
    if failed:
        raise MemoryError(f"distillation loss: no memory for a row buffer of "
                          f"{job.cols} values")


cdef Job make_job(tuple student, tuple teacher, Py_ssize_t cols, int compute,
                  const uint8_t[::1] keep, double[:, ::1] stats, double inv_t,
                  int divergence, double beta, int level):
    cdef Job job
    job.runs = lucid_distill_runs_for(level)
    job.pair = lucid_row_pair_for(level)
    job.keeps_f32 = level == 2 and compute == F32
    job.student = make_operand(student)
    job.teacher = make_operand(teacher)
    job.cols = cols
    job.compute = compute
    job.divergence = divergence
    job.inv_t = inv_t
    job.beta = beta
    job.keep = &keep[0] if keep.shape[0] > 0 else NULL
    job.stats = &stats[0, 0]
    job.out.data = NULL
    job.coef = NULL
    job.coef_stride = 0
    job.wrt_teacher = False
    return job


# The wrapper asks effective_n_threads for this kernel's thread count with it.
MIN_WORK_PER_THREAD = MIN_ELEMENTS_PER_THREAD


def forward_rows(tuple student,            # IN, (address, row stride, col stride, kind)
                 tuple teacher,            # IN, the same for the teacher's rows
                 Py_ssize_t cols,
                 int compute,              # F32 or F64, a value of KIND_CODES
                 const uint8_t[::1] keep,  # IN, (rows,), or empty: keep every row
                 double[:, ::1] stats,     # OUT, (rows, N_STATS)
                 double inv_t, int divergence, double beta, int level,
                 int n_threads,            # from effective_n_threads; 1: no OpenMP region
                 tuple student_grad=None,  # OUT, optional: the student's gradient rows
                 const double[::1] coef=None):  # IN, its factor: 1 value or one per row
    """Per-row constants and divergence of ``rows = stats.shape[0]`` rows into ``stats``.

    With ``student_grad``, also the gradient w.r.t. the student times ``coef``,
    computed while each row is in cache. The wrapper (``distill.py``) checks
    shapes and arguments and keeps the arrays behind the addresses alive; this
    loop trusts them.
    """
    cdef Py_ssize_t rows = stats.shape[0]
    if rows == 0:
        return
    cdef Job job = make_job(student, teacher, cols, compute, keep, stats, inv_t, divergence,
                            beta, level)
    if student_grad is not None:
        job.out = make_operand(student_grad)
        job.coef = &coef[0]
        job.coef_stride = 0 if coef.shape[0] == 1 else 1
    run(&job, rows, False, n_threads)


def gradient_rows(tuple student, tuple teacher,
                  tuple out,                # OUT, the gradient rows (writable view)
                  Py_ssize_t cols, int compute,
                  const uint8_t[::1] keep,  # IN, as for forward_rows
                  double[:, ::1] stats,     # IN, what forward_rows wrote
                  const double[::1] coef,   # IN, 1 value, or one per row
                  bint wrt_teacher, double inv_t, int divergence, double beta, int level,
                  int n_threads):           # from effective_n_threads; 1: no OpenMP region
    """Gradient rows w.r.t. the student (or the teacher) times ``coef`` into ``out``."""
    cdef Py_ssize_t rows = stats.shape[0]
    if rows == 0:
        return
    cdef Job job = make_job(student, teacher, cols, compute, keep, stats, inv_t, divergence,
                            beta, level)
    job.out = make_operand(out)
    job.coef = &coef[0]
    job.coef_stride = 0 if coef.shape[0] == 1 else 1
    job.wrt_teacher = wrt_teacher
    run(&job, rows, True, n_threads)


def _pair_row(tuple teacher, tuple student, Py_ssize_t cols, double scale, bint narrow,
              int level):
    """The row kernel's pair entry on one pair of logit rows, their maxima seeded, for tests.

    ``teacher`` and ``student``: ``(address, storage code, column stride in
    bytes)``, storage codes as ``rowwise._STORAGE``'s (any the row kernel
    reads, any stride: the loss itself hands it contiguous float32 or
    float64 rows only); ``narrow`` as ``rowwise.narrow`` says of the two
    rows. Returns ``(kl, shifts, log_sums)``: KL(p || q) of
    p = softmax(teacher * scale) and q = softmax(student * scale), and per
    side (teacher first) the shift and log-sum of its normaliser.
    """
    cdef lucid_row_job job
    cdef lucid_row_input side
    cdef lucid_row_pair_io io
    cdef double kl = 0.0
    cdef char *work = <char *>PyMem_RawMalloc(lucid_row_work_bytes(1))
    if work == NULL:
        raise MemoryError("_pair_row: no memory for the row kernel's work space")
    memset(&job, 0, sizeof(job))
    memset(&side, 0, sizeof(side))
    memset(&io, 0, sizeof(io))
    job.teacher.data = <const char *><size_t>teacher[0]
    job.teacher.dtype = teacher[1]
    job.teacher.col_stride = teacher[2]
    side.data = <const char *><size_t>student[0]
    side.dtype = student[1]
    side.col_stride = student[2]
    job.students = &side
    job.n_students = 1
    job.teacher_kind = LUCID_ROW_LOGITS
    job.student_kind = LUCID_ROW_LOGITS
    job.cols = cols
    job.scale = scale
    job.narrow = narrow
    job.rows = 1
    job.kl = &kl
    io.seed_max = 1
    with nogil:
        lucid_row_pair_for(level)(&job, work, &io)
    PyMem_RawFree(work)
    return kl, (io.shift[0], io.shift[1]), (io.log_sum[0], io.log_sum[1])


def _float_to_half(const float[::1] values, uint16_t[::1] out):
    """``out[:] =`` the float16 bits of ``values``, as gradients of float16 inputs are stored (for tests)."""
    cdef Py_ssize_t j
    with nogil:
        for j in range(values.shape[0]):
            out[j] = lucid_float_to_half(values[j])


def _log16(const double[::1] m, double[::1] out):
    """``out[:] =`` log(m) with the AVX-512 loops' logarithm (``log_avx512.h``), for tests.

    Raises ``RuntimeError`` where the CPU or the build has no AVX-512 loops.
    """
    from lucid._ext import _simd
    if _simd.cpu_simd_level() != "avx512" or m.shape[0] != out.shape[0]:
        raise RuntimeError("_log16: needs an AVX-512 CPU and an output of the input's length")
    if not lucid_distill_log16_for_tests(&m[0] if m.shape[0] else NULL,
                                         &out[0] if out.shape[0] else NULL, m.shape[0]):
        raise RuntimeError("_log16: this build has no AVX-512 loops")
