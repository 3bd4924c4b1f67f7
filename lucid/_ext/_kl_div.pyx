"""OpenMP kernels for the KL divergence: forward sum, per-element forward, gradients.

Three layers, top to bottom of what a call goes through:

1. Python-facing wrappers (``kl_div_sum_2d`` ...): take 2-D strided views and
   caller-allocated outputs, release the GIL, choose the compute precision.
2. Block loops: ``prange(..., schedule="static")`` over fixed-size blocks of
   the 2-D index space. A block is up to ``BLOCK`` elements: a slice of one row,
   or several whole short rows.
3. Runs: loops over contiguous stretches of one row, in ``kl_simd.h`` (C,
   compiled once per SIMD level; ``_simd`` picks the level at import and
   hands out its table, ``runs`` below), over the per-element math of
   ``kl_math.h``.

Inputs are ``const`` memoryviews, so read-only memory maps work, and may have any
strides (negative, zero for broadcasting). A run that is not contiguous in the
compute precision (strided, broadcast, float16 stored as uint16, or a dtype mix)
is first gathered into a per-thread stack buffer of ``BLOCK`` elements; nothing
input-sized is ever allocated here.

Determinism: the sum of every block is computed in a fixed order and the block
sums are added in block order, in float64, independent of the thread count, so
a reduction is bitwise identical for 1, 2 or 64 threads.
"""
import threading

from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport prange
from libc.stdint cimport uint16_t
from libc.string cimport memcpy

from lucid._ext._openmp_helpers cimport effective_n_threads

from lucid._ext._simd cimport kl_runs, lucid_kl_runs

cdef extern from "kl_math.h" nogil:
    float lucid_half_to_float(uint16_t h)

# Storage types of the inputs; uint16_t holds float16 bits.
ctypedef fused x_type:
    float
    double
    uint16_t

ctypedef fused t_type:
    float
    double
    uint16_t

# Compute precision: float for float16/float32 inputs, double when either is float64.
ctypedef fused real:
    float
    double

cdef enum:
    # Elements per block: the unit of work, of determinism and of the gather buffers
    # (2 x 4096 doubles = 64 KiB of stack per thread).
    BLOCK = 4096
    # Block sums kept at once; bounds the partial-sum array to 64 KiB.
    GROUP_BLOCKS = 8192
    # Below this many elements per thread an OpenMP fork/join costs more than it
    # saves. Measured on 2 cores (AVX-512): a parallel region costs a few
    # microseconds, 2 threads beat 1 from about 6000 elements per thread and
    # reach 1.6x at 16384 (see docs/performance.rst).
    MIN_ELEMENTS_PER_THREAD = 16384


cdef struct Blocking:
    Py_ssize_t rows
    Py_ssize_t cols
    Py_ssize_t col_chunk        # columns per block (<= BLOCK)
    Py_ssize_t chunks_per_row   # blocks across one row
    Py_ssize_t rows_per_block   # whole rows per block when rows are short
    Py_ssize_t n_blocks


cdef Blocking make_blocking(Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef Blocking b
    b.rows = rows
    b.cols = cols
    b.col_chunk = cols if cols < BLOCK else BLOCK
    if b.col_chunk < 1:
        b.col_chunk = 1
    b.chunks_per_row = (cols + b.col_chunk - 1) // b.col_chunk
    b.rows_per_block = BLOCK // cols if 0 < cols < BLOCK else 1
    b.n_blocks = ((rows + b.rows_per_block - 1) // b.rows_per_block) * b.chunks_per_row
    return b


cdef struct BlockSpan:
    Py_ssize_t r0       # rows r0:r1 of the block
    Py_ssize_t r1
    Py_ssize_t c0       # columns c0:c0+n of each of those rows
    Py_ssize_t n


cdef inline BlockSpan block_span(Blocking b, Py_ssize_t k) noexcept nogil:
    """The rows and columns that block ``k`` covers."""
    cdef BlockSpan span
    span.r0 = (k // b.chunks_per_row) * b.rows_per_block
    span.r1 = min(span.r0 + b.rows_per_block, b.rows)
    span.c0 = (k % b.chunks_per_row) * b.col_chunk
    span.n = min(b.col_chunk, b.cols - span.c0)
    return span


cdef inline const real* contiguous_run(const x_type[:, :] a, Py_ssize_t r, Py_ssize_t c0,
                                       Py_ssize_t n, real *buf) noexcept nogil:
    """Row ``r``, columns ``c0:c0+n`` of ``a`` as contiguous ``real`` values.

    Points into ``a`` itself when it already is contiguous and aligned in the
    compute precision; otherwise converts into ``buf`` (strided, broadcast,
    misaligned, float16 or a different precision).
    """
    cdef Py_ssize_t j
    cdef x_type value
    # numpy allows buffers at any byte offset (np.frombuffer, packed records), but
    # a misaligned load is undefined behaviour in C: such runs copy bytes instead.
    cdef bint aligned = ((<size_t>&a[r, c0]) | <size_t>a.strides[1]) % sizeof(x_type) == 0
    if aligned and ((x_type is float and real is float) or (x_type is double and real is double)):
        if a.strides[1] == sizeof(real) or n == 1:
            return <const real*>&a[r, c0]
    for j in range(n):
        if aligned:
            value = a[r, c0 + j]
        else:
            memcpy(&value, &a[r, c0 + j], sizeof(x_type))
        if x_type is uint16_t:
            buf[j] = <real>lucid_half_to_float(value)
        else:
            buf[j] = <real>value
    return buf


cdef double sum_block(const lucid_kl_runs *runs, const x_type[:, :] x, const t_type[:, :] t,
                      Blocking b, Py_ssize_t k, bint log_target, real kind) noexcept nogil:
    """Sum of the losses in block ``k``, rows in order, in float64."""
    cdef real xbuf[BLOCK]
    cdef real tbuf[BLOCK]
    cdef const real *xp
    cdef const real *tp
    cdef BlockSpan span = block_span(b, k)
    cdef Py_ssize_t r, c0 = span.c0, n = span.n
    cdef double acc = 0.0
    for r in range(span.r0, span.r1):
        xp = contiguous_run(x, r, c0, n, xbuf)
        tp = contiguous_run(t, r, c0, n, tbuf)
        if real is float:
            acc += runs.sum_f32(xp, tp, n, log_target)
        else:
            acc += runs.sum_f64(xp, tp, n, log_target)
    return acc


cdef double sum_2d(const x_type[:, :] x, const t_type[:, :] t, bint log_target,
                   real kind, bint check_signals) except? -1 nogil:
    """Fixed-order blocked sum: block sums in groups, each group added in block order.

    With ``check_signals``, pending signals (Ctrl-C) are handled between groups,
    so that a huge reduction (a broadcast of billions of elements) can be
    interrupted: the handler's exception, e.g. KeyboardInterrupt, propagates.
    """
    cdef Blocking b = make_blocking(x.shape[0], x.shape[1])
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef double partials[GROUP_BLOCKS]
    cdef double total = 0.0
    cdef Py_ssize_t g0, g1, k
    cdef int n_threads = effective_n_threads(b.rows * b.cols, MIN_ELEMENTS_PER_THREAD)
    g0 = 0
    while g0 < b.n_blocks:
        g1 = min(g0 + GROUP_BLOCKS, b.n_blocks)
        if n_threads > 1:
            for k in prange(g0, g1, schedule="static", num_threads=n_threads):
                partials[k - g0] = sum_block(runs, x, t, b, k, log_target, kind)
        else:
            # One thread: stay out of OpenMP entirely (cheap, and fork-safe).
            for k in range(g0, g1):
                partials[k - g0] = sum_block(runs, x, t, b, k, log_target, kind)
        for k in range(g1 - g0):
            total += partials[k]
        g0 = g1
        if check_signals and g0 < b.n_blocks:
            with gil:
                PyErr_CheckSignals()
    return total


cdef void none_block(const lucid_kl_runs *runs, const x_type[:, :] x, const t_type[:, :] t,
                     real[:, ::1] out, Blocking b, Py_ssize_t k, bint log_target) noexcept nogil:
    """Per-element losses of block ``k`` written into ``out``."""
    cdef real xbuf[BLOCK]
    cdef real tbuf[BLOCK]
    cdef const real *xp
    cdef const real *tp
    cdef BlockSpan span = block_span(b, k)
    cdef Py_ssize_t r, c0 = span.c0, n = span.n
    for r in range(span.r0, span.r1):
        xp = contiguous_run(x, r, c0, n, xbuf)
        tp = contiguous_run(t, r, c0, n, tbuf)
        if real is float:
            runs.none_f32(xp, tp, &out[r, c0], n, log_target)
        else:
            runs.none_f64(xp, tp, &out[r, c0], n, log_target)


cdef void grad_block(const lucid_kl_runs *runs, const x_type[:, :] x, const t_type[:, :] t,
                     const real[:, :] g, bint g_scalar, real[:, ::1] out, Blocking b,
                     Py_ssize_t k, bint log_target, bint wrt_target) noexcept nogil:
    """Gradient of block ``k`` w.r.t. x (or target), times the upstream ``g``.

    With ``g_scalar`` (one upstream value for every element, as a reduction's
    0-d gradient) ``g[0, 0]`` is passed on as that value instead of being
    gathered per row. d/dx does not depend on x, so x is not read for it.
    """
    cdef real xbuf[BLOCK]
    cdef real tbuf[BLOCK]
    cdef real gbuf[BLOCK]
    cdef const real *xp
    cdef const real *tp
    cdef const real *gp = contiguous_run(g, 0, 0, 1, gbuf)
    cdef BlockSpan span = block_span(b, k)
    cdef Py_ssize_t r, c0 = span.c0, n = span.n
    for r in range(span.r0, span.r1):
        tp = contiguous_run(t, r, c0, n, tbuf)
        xp = contiguous_run(x, r, c0, n, xbuf) if wrt_target else tp
        if not g_scalar:
            gp = contiguous_run(g, r, c0, n, gbuf)
        if real is float:
            runs.grad_f32(xp, tp, gp, g_scalar, &out[r, c0], n, log_target, wrt_target)
        else:
            runs.grad_f64(xp, tp, gp, g_scalar, &out[r, c0], n, log_target, wrt_target)


def kl_div_sum_2d(const x_type[:, :] x,  # IN
                  const t_type[:, :] t,  # IN, same shape as x
                  bint log_target):
    """Return the float64 sum of the per-element losses of two 2-D views."""
    cdef double total
    # Python runs signal handlers in the main thread only, so only a call
    # from it checks for them; a call with one group never needs to.
    cdef bint check_signals = (x.shape[0] * x.shape[1] > BLOCK * GROUP_BLOCKS and
                               threading.current_thread() is threading.main_thread())
    if x_type is double or t_type is double:
        with nogil:
            total = sum_2d(x, t, log_target, <double>0, check_signals)
    else:
        with nogil:
            total = sum_2d(x, t, log_target, <float>0, check_signals)
    return total


def kl_div_none_2d(const x_type[:, :] x,  # IN
                   const t_type[:, :] t,  # IN, same shape as x
                   real[:, ::1] out,      # OUT, same shape; its dtype is the compute precision
                   bint log_target):
    """Write the per-element losses of two 2-D views into ``out``."""
    cdef Blocking b = make_blocking(x.shape[0], x.shape[1])
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef int n_threads = effective_n_threads(b.rows * b.cols, MIN_ELEMENTS_PER_THREAD)
    cdef Py_ssize_t k
    with nogil:
        if n_threads > 1:
            for k in prange(b.n_blocks, schedule="static", num_threads=n_threads):
                none_block(runs, x, t, out, b, k, log_target)
        else:
            for k in range(b.n_blocks):
                none_block(runs, x, t, out, b, k, log_target)


def kl_div_grad_2d(const x_type[:, :] x,  # IN
                   const t_type[:, :] t,  # IN, same shape as x
                   const real[:, :] g,    # IN, upstream gradient, or (1, 1) for one value
                   real[:, ::1] out,      # OUT, same shape; its dtype is the compute precision
                   bint log_target,
                   bint wrt_target):
    """Write d loss / d x (or d loss / d target when ``wrt_target``) times ``g`` into ``out``."""
    cdef Blocking b = make_blocking(x.shape[0], x.shape[1])
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef int n_threads = effective_n_threads(b.rows * b.cols, MIN_ELEMENTS_PER_THREAD)
    # One value for every element: a (1, 1) array or a zero-stride broadcast.
    cdef bint g_scalar = (g.shape[0] == 1 and g.shape[1] == 1) or (
        g.strides[0] == 0 and g.strides[1] == 0)
    cdef Py_ssize_t k
    with nogil:
        if n_threads > 1:
            for k in prange(b.n_blocks, schedule="static", num_threads=n_threads):
                grad_block(runs, x, t, g, g_scalar, out, b, k, log_target, wrt_target)
        else:
            for k in range(b.n_blocks):
                grad_block(runs, x, t, g, g_scalar, out, b, k, log_target, wrt_target)
