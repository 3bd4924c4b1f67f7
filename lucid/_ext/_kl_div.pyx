"""OpenMP kernels for the KL divergence: sums, per-element losses, gradients, per-distribution sums.

Three layers, top to bottom of what a call goes through:

1. Python-facing wrappers (``kl_div_sum`` ...): take numpy arrays that
   broadcast to the loss shape (any strides: negative, zero, unaligned) and
   caller-allocated C-contiguous outputs, describe each input as a pointer
   plus strides over the loss shape (up to 32 axes, merged where every input
   allows), release the GIL and choose the compute precision.
2. Block loops: ``prange(..., schedule="static")`` over fixed blocks of
   ``BLOCK`` consecutive elements of the *logical* C-order index of the loss
   shape (or of one distribution, for the per-distribution sums). A block is
   handed to a run as one contiguous stretch per input: a pointer into the
   input when its elements lie there contiguously in the compute precision,
   otherwise gathered into a per-thread heap buffer by walking the input's
   own shape and strides here, in C, without the GIL.
3. Runs: loops over contiguous stretches, in ``kl_simd.h`` (C, compiled once
   per SIMD level; ``_simd`` picks the level at import and hands out its
   table, ``runs`` below), over the per-element math of ``kl_math.h``.

Determinism: a block is always the same logical elements, summed by one run
in a fixed order, and block sums are added in block order in float64. So a
reduction is bitwise identical for any thread count *and* any layout of the
same values (C or Fortran order, strided, reversed or broadcast views).

Memory: each thread allocates its own ``SCRATCH_BUFFERS x BLOCK`` doubles
(128 KiB) on the heap when it starts a parallel region, and a sum keeps its
block sums in one heap array of at most ``GROUP_BLOCKS`` doubles (64 KiB).
Nothing large lives on any thread's stack (threads with small stacks are
safe) and nothing input-sized is ever allocated here.
"""
import threading

from cpython.buffer cimport PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport parallel, prange
from libc.stdint cimport uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from lucid._ext._blocks cimport BLOCK, MIN_ELEMENTS_PER_THREAD
from lucid._ext._openmp_helpers cimport record_parallel

from lucid._ext._simd cimport kl_runs, lucid_kl_runs

cdef extern from "kl_math.h" nogil:
    float lucid_half_to_float(uint16_t h)
    uint16_t lucid_float_to_half(float f)

# Compute precision: float for float16/float32 inputs, double when either is float64.
ctypedef fused real:
    float
    double

cdef enum:
    # BLOCK and MIN_ELEMENTS_PER_THREAD come from _blocks.pxd.
    # Block sums kept at once (64 KiB); between groups a sum checks for Ctrl-C.
    GROUP_BLOCKS = 8192
    # numpy's limit, which kl_div checks before calling in.
    MAX_DIMS = 32
    # Per-thread buffers of BLOCK doubles: x, target, upstream gradient, output.
    SCRATCH_BUFFERS = 4


cdef struct Layout:
    int ndim                      # axes left after merging (at least 1)
    Py_ssize_t size               # elements of the loss shape
    Py_ssize_t dims[MAX_DIMS]


cdef struct Operand:
    const char *data              # element 0 of the loss shape
    Py_ssize_t itemsize           # 2 (float16 bits), 4 or 8
    Py_ssize_t strides[MAX_DIMS]  # bytes per step of each axis of the layout; 0 to broadcast


cdef struct Job:
    Layout layout
    Operand x
    Operand t
    Operand g                     # the upstream gradient, unless g_scalar
    char *out                     # C-contiguous, loss shape
    bint out_half                 # out holds float16 bits (computed in float)
    bint g_scalar                 # one upstream value, g_value, for every element
    double g_value
    bint log_target
    bint wrt_target


# ---------------------------------------------------------------- layouts --

cdef int read_operand(object array, tuple shape, int axis, Operand *op) except -1:
    """Pointer and strides of ``array`` broadcast to ``shape``; ``axis`` (>= 0) moved last."""
    cdef Py_buffer view
    cdef int ndim = len(shape), offset, d, k
    cdef Py_ssize_t moved
    PyObject_GetBuffer(array, &view, PyBUF_STRIDES)
    try:
        op.data = <const char *>view.buf
        op.itemsize = view.itemsize
        offset = ndim - view.ndim
        for d in range(ndim):
            k = d - offset
            # numpy broadcasting: missing leading axes and size-1 axes repeat.
            op.strides[d] = 0 if k < 0 or view.shape[k] == 1 else view.strides[k]
    finally:
        # The caller holds the array for the whole call; only the pointer is kept.
        PyBuffer_Release(&view)
    if 0 <= axis < ndim - 1:
        moved = op.strides[axis]
        for d in range(axis, ndim - 1):
            op.strides[d] = op.strides[d + 1]
        op.strides[ndim - 1] = moved
    return 0


cdef void merge_axes(Layout *layout, Operand **ops, int n_ops) noexcept:
    """Drop size-1 axes and merge neighbours every operand walks as one.

    The logical C order of the elements is unchanged, only described with
    fewer axes: a C-contiguous array becomes one axis, whatever its shape.
    """
    cdef int n = 0, d, i, e
    cdef bint joins
    for d in range(layout.ndim):
        if layout.dims[d] != 1:
            layout.dims[n] = layout.dims[d]
            for i in range(n_ops):
                ops[i].strides[n] = ops[i].strides[d]
            n += 1
    d = n - 1
    while d > 0:
        joins = True
        for i in range(n_ops):
            joins = joins and ops[i].strides[d - 1] == ops[i].strides[d] * layout.dims[d]
        if joins:
            layout.dims[d - 1] *= layout.dims[d]
            for i in range(n_ops):
                ops[i].strides[d - 1] = ops[i].strides[d]
            for e in range(d, n - 1):
                layout.dims[e] = layout.dims[e + 1]
                for i in range(n_ops):
                    ops[i].strides[e] = ops[i].strides[e + 1]
            n -= 1
        d -= 1
    if n == 0:
        n = 1
        layout.dims[0] = 1
        for i in range(n_ops):
            ops[i].strides[0] = 0
    layout.ndim = n


cdef int describe(Job *job, tuple shape, object x, object t, object g, int axis) except -1:
    """Fill ``job``'s layout and operands (``g`` may be None)."""
    cdef Operand *ops[3]
    cdef int n_ops = 2, d
    cdef Py_ssize_t moved
    job.layout.ndim = len(shape)
    job.layout.size = 1
    for d in range(job.layout.ndim):
        job.layout.dims[d] = shape[d]
        job.layout.size *= shape[d]
    if 0 <= axis < job.layout.ndim - 1:
        moved = job.layout.dims[axis]
        for d in range(axis, job.layout.ndim - 1):
            job.layout.dims[d] = job.layout.dims[d + 1]
        job.layout.dims[job.layout.ndim - 1] = moved
    read_operand(x, shape, axis, &job.x)
    read_operand(t, shape, axis, &job.t)
    ops[0] = &job.x
    ops[1] = &job.t
    if g is not None:
        read_operand(g, shape, axis, &job.g)
        ops[2] = &job.g
        n_ops = 3
    merge_axes(&job.layout, ops, n_ops)
    return 0


cdef inline void convert_run(const char *p, Py_ssize_t stride, Py_ssize_t itemsize,
                             Py_ssize_t n, real *out) noexcept nogil:
    """``n`` elements ``stride`` bytes apart, widened or copied into ``out``.

    Loads go through memcpy: numpy allows buffers at any byte offset
    (np.frombuffer, packed records) and a misaligned load is undefined
    behaviour in C; compilers turn the fixed-size memcpy into a plain load.
    """
    cdef Py_ssize_t j
    cdef uint16_t half
    cdef float single
    cdef double wide
    if stride == itemsize and itemsize == sizeof(real):
        memcpy(out, p, n * itemsize)
    elif itemsize == 2:
        for j in range(n):
            memcpy(&half, p + j * stride, 2)
            out[j] = <real>lucid_half_to_float(half)
    elif itemsize == 4:
        for j in range(n):
            memcpy(&single, p + j * stride, 4)
            out[j] = <real>single
    else:
        for j in range(n):
            memcpy(&wide, p + j * stride, 8)
            out[j] = <real>wide


cdef const real *fetch(const Operand *op, const Layout *layout, Py_ssize_t start,
                       Py_ssize_t count, real *buf) noexcept nogil:
    """Logical elements ``start:start+count`` of ``op`` as contiguous ``real`` values.

    A pointer into the operand when they lie contiguously and aligned in the
    compute precision; otherwise gathered into ``buf``, one stretch of the
    last axis at a time, carrying into the outer axes like an odometer.
    """
    cdef Py_ssize_t index[MAX_DIMS]
    cdef Py_ssize_t rest = start, step, done = 0
    cdef int last = layout.ndim - 1, d
    cdef const char *p = op.data
    for d in range(last, -1, -1):
        index[d] = rest % layout.dims[d]
        rest = rest // layout.dims[d]
        p += index[d] * op.strides[d]
    if (op.itemsize == sizeof(real) and count <= layout.dims[last] - index[last]
            and (op.strides[last] == sizeof(real) or count == 1)
            and (<size_t>p) % sizeof(real) == 0):
        return <const real *>p
    while True:
        step = min(layout.dims[last] - index[last], count - done)
        convert_run(p, op.strides[last], op.itemsize, step, buf + done)
        done += step
        if done == count:
            return buf
        p += step * op.strides[last]
        index[last] += step
        d = last
        while index[d] == layout.dims[d]:
            p -= index[d] * op.strides[d]
            index[d] = 0
            d -= 1
            index[d] += 1
            p += op.strides[d]


# ------------------------------------------------------------ block loops --

cdef double sum_block(const lucid_kl_runs *runs, const Job *job, Py_ssize_t start,
                      Py_ssize_t n, real *scratch) noexcept nogil:
    """Sum of the losses of logical elements ``start:start+n``, in float64."""
    cdef const real *xp = fetch(&job.x, &job.layout, start, n, scratch)
    cdef const real *tp = fetch(&job.t, &job.layout, start, n, scratch + BLOCK)
    if real is float:
        return runs.sum_f32(xp, tp, n, job.log_target)
    else:
        return runs.sum_f64(xp, tp, n, job.log_target)


cdef void store(const Job *job, Py_ssize_t start, Py_ssize_t n, const real *values) noexcept nogil:
    """Write float work values into a float16 output (real is float there)."""
    cdef uint16_t *out = (<uint16_t *>job.out) + start
    cdef Py_ssize_t j
    for j in range(n):
        out[j] = lucid_float_to_half(<float>values[j])


cdef inline real *output_run(const Job *job, Py_ssize_t start, real *scratch) noexcept nogil:
    # float16 results are computed into scratch and stored converted.
    return scratch + 3 * BLOCK if job.out_half else (<real *>job.out) + start


cdef void elementwise_block(const lucid_kl_runs *runs, const Job *job, Py_ssize_t k,
                            real *scratch) noexcept nogil:
    """Per-element losses of block ``k`` written into the output."""
    cdef Py_ssize_t start = k * BLOCK
    cdef Py_ssize_t n = min(<Py_ssize_t>BLOCK, job.layout.size - start)
    cdef const real *xp = fetch(&job.x, &job.layout, start, n, scratch)
    cdef const real *tp = fetch(&job.t, &job.layout, start, n, scratch + BLOCK)
    cdef real *out = output_run(job, start, scratch)
    if real is float:
        runs.elementwise_f32(xp, tp, out, n, job.log_target)
    else:
        runs.elementwise_f64(xp, tp, out, n, job.log_target)
    if job.out_half:
        store(job, start, n, out)


cdef void grad_block(const lucid_kl_runs *runs, const Job *job, Py_ssize_t k,
                     real *scratch) noexcept nogil:
    """Gradient of block ``k`` w.r.t. x (or target), times the upstream gradient.

    d/dx does not depend on x, so x is not read for it.
    """
    cdef Py_ssize_t start = k * BLOCK
    cdef Py_ssize_t n = min(<Py_ssize_t>BLOCK, job.layout.size - start)
    cdef const real *tp = fetch(&job.t, &job.layout, start, n, scratch + BLOCK)
    cdef const real *xp = fetch(&job.x, &job.layout, start, n, scratch) if job.wrt_target else tp
    cdef real g_value = <real>job.g_value
    cdef const real *gp = &g_value
    cdef real *out = output_run(job, start, scratch)
    if not job.g_scalar:
        gp = fetch(&job.g, &job.layout, start, n, scratch + 2 * BLOCK)
    if real is float:
        runs.grad_f32(xp, tp, gp, job.g_scalar, out, n, job.log_target, job.wrt_target)
    else:
        runs.grad_f64(xp, tp, gp, job.g_scalar, out, n, job.log_target, job.wrt_target)
    if job.out_half:
        store(job, start, n, out)


cdef struct Rows:
    Py_ssize_t length             # logical elements per distribution
    double *kl                    # OUT, one per distribution
    double *p_sums                # OUT, sums of p and of exp(x), or NULL
    double *q_sums
    const unsigned char *select   # 0 skips a distribution (kl 0, nothing read); NULL: none skipped


cdef void row_sums(const lucid_kl_runs *runs, const Job *job, const Rows *rows, Py_ssize_t row,
                   real *scratch) noexcept nogil:
    """KL of distribution ``row``: its losses summed in blocks of BLOCK, in order.

    A deselected distribution is never read, so whatever it holds (NaN, -inf)
    cannot reach the result: it is selected out, not multiplied by 0.
    """
    cdef Py_ssize_t c = 0, n, start
    cdef double total = 0.0, p_total = 0.0, q_total = 0.0
    cdef double sums[2]
    cdef const real *xp
    cdef const real *tp
    if rows.select != NULL and not rows.select[row]:
        rows.kl[row] = 0.0
        return
    while c < rows.length:
        n = min(<Py_ssize_t>BLOCK, rows.length - c)
        start = row * rows.length + c
        if rows.p_sums == NULL:
            total += sum_block(runs, job, start, n, scratch)
        else:
            xp = fetch(&job.x, &job.layout, start, n, scratch)
            tp = fetch(&job.t, &job.layout, start, n, scratch + BLOCK)
            if real is float:
                total += runs.stats_f32(xp, tp, n, job.log_target, sums)
            else:
                total += runs.stats_f64(xp, tp, n, job.log_target, sums)
            p_total += sums[0]
            q_total += sums[1]
        c += n
    rows.kl[row] = total
    if rows.p_sums != NULL:
        rows.p_sums[row] = p_total
        rows.q_sums[row] = q_total


cdef inline real *thread_scratch(const real *like) noexcept nogil:
    """A worker thread's own work buffers (NULL when out of memory)."""
    return <real *>malloc(SCRATCH_BUFFERS * BLOCK * sizeof(double))


cdef double sum_all(const Job *job, double *partials, real *scratch, int n_threads,
                    bint check_signals, int *failed) except? -1 nogil:
    """Fixed-order blocked sum: block sums in groups, each group added in block order.

    ``scratch`` serves the serial case; parallel threads allocate their own.
    With ``check_signals``, pending signals (Ctrl-C) are handled between groups,
    so that a huge reduction (a broadcast of billions of elements) can be
    interrupted: the handler's exception, e.g. KeyboardInterrupt, propagates.
    """
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef Py_ssize_t size = job.layout.size
    cdef Py_ssize_t n_blocks = (size + BLOCK - 1) // BLOCK
    cdef Py_ssize_t g0 = 0, g1, k
    cdef double total = 0.0
    cdef real *local
    while g0 < n_blocks:
        g1 = min(g0 + GROUP_BLOCKS, n_blocks)
        if n_threads > 1:
            record_parallel()
            with parallel(num_threads=n_threads):
                local = thread_scratch(scratch)
                if local == NULL:
                    failed[0] = 1
                for k in prange(g0, g1, schedule="static"):
                    if local != NULL:
                        partials[k - g0] = sum_block(runs, job, k * BLOCK,
                                                     min(<Py_ssize_t>BLOCK, size - k * BLOCK), local)
                free(local)
        else:
            # One thread: stay out of OpenMP entirely (cheap, and fork-safe).
            for k in range(g0, g1):
                partials[k - g0] = sum_block(runs, job, k * BLOCK,
                                             min(<Py_ssize_t>BLOCK, size - k * BLOCK), scratch)
        for k in range(g1 - g0):
            total += partials[k]
        g0 = g1
        if check_signals and g0 < n_blocks:
            with gil:
                PyErr_CheckSignals()
    return total


cdef void each_block(const Job *job, bint gradient, real *scratch, int n_threads,
                     int *failed) noexcept nogil:
    """Per-element losses (or the gradient) of every block into the output."""
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef Py_ssize_t n_blocks = (job.layout.size + BLOCK - 1) // BLOCK, k
    cdef real *local
    if n_threads > 1:
        record_parallel()
        with parallel(num_threads=n_threads):
            local = thread_scratch(scratch)
            if local == NULL:
                failed[0] = 1
            for k in prange(n_blocks, schedule="static"):
                if local != NULL:
                    if gradient:
                        grad_block(runs, job, k, local)
                    else:
                        elementwise_block(runs, job, k, local)
            free(local)
    else:
        for k in range(n_blocks):
            if gradient:
                grad_block(runs, job, k, scratch)
            else:
                elementwise_block(runs, job, k, scratch)


cdef void each_row(const Job *job, const Rows *rows, real *scratch, int n_threads,
                   int *failed) noexcept nogil:
    """The KL (and sums) of every distribution into ``rows``' outputs."""
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef Py_ssize_t n_rows = job.layout.size // rows.length, row
    cdef real *local
    if n_threads > 1:
        record_parallel()
        with parallel(num_threads=n_threads):
            local = thread_scratch(scratch)
            if local == NULL:
                failed[0] = 1
            for row in prange(n_rows, schedule="static"):
                if local != NULL:
                    row_sums(runs, job, rows, row, local)
            free(local)
    else:
        for row in range(n_rows):
            row_sums(runs, job, rows, row, scratch)


# ------------------------------------------------------- Python wrappers --

cdef class Scratch:
    """The calling thread's work buffers, on the heap, freed with the object."""
    cdef double *data

    def __cinit__(self):
        self.data = <double *>malloc(SCRATCH_BUFFERS * BLOCK * sizeof(double))
        if self.data == NULL:
            raise MemoryError("kl_div: cannot allocate its work buffers")

    def __dealloc__(self):
        free(self.data)


cdef int raise_if_failed(int failed) except -1:
    if failed:
        raise MemoryError("kl_div: a worker thread cannot allocate its work buffers")
    return 0


# The wrapper asks effective_n_threads for this kernel's thread count with it.
MIN_WORK_PER_THREAD = MIN_ELEMENTS_PER_THREAD


def kl_div_sum(tuple shape,          # the loss shape
               x,                    # IN, broadcasts to shape; float16 as uint16
               t,                    # IN, broadcasts to shape
               bint log_target,
               bint use_double,      # compute precision: float64 or float32
               int n_threads):       # from effective_n_threads; 1: no OpenMP region
    """Return the float64 sum of the per-element losses over ``shape``."""
    cdef Job job
    cdef Scratch scratch = Scratch()
    cdef double total
    cdef int failed = 0
    cdef bint check_signals
    cdef double *partials = <double *>malloc(GROUP_BLOCKS * sizeof(double))
    if partials == NULL:
        raise MemoryError("kl_div: cannot allocate its block sums")
    try:
        describe(&job, shape, x, t, None, -1)
        job.log_target = log_target
        # Python runs signal handlers in the main thread only, so only a call
        # from it checks for them; a call with one group never needs to.
        check_signals = (job.layout.size > BLOCK * GROUP_BLOCKS and
                         threading.current_thread() is threading.main_thread())
        with nogil:
            if use_double:
                total = sum_all(&job, partials, scratch.data, n_threads, check_signals, &failed)
            else:
                total = sum_all(&job, partials, <float *>scratch.data, n_threads, check_signals,
                                &failed)
        raise_if_failed(failed)
    finally:
        free(partials)
    return total


cdef int run_blocks(Job *job, object out, bint gradient, bint use_double,
                    int n_threads) except -1:
    cdef Scratch scratch = Scratch()
    cdef Py_buffer view
    cdef int failed = 0
    PyObject_GetBuffer(out, &view, PyBUF_STRIDES)
    job.out = <char *>view.buf
    job.out_half = view.itemsize == 2
    PyBuffer_Release(&view)
    with nogil:
        if use_double:
            each_block(job, gradient, scratch.data, n_threads, &failed)
        else:
            each_block(job, gradient, <float *>scratch.data, n_threads, &failed)
    return raise_if_failed(failed)


def kl_div_elementwise(tuple shape,  # the loss shape
                       x,            # IN, broadcasts to shape; float16 as uint16
                       t,            # IN, broadcasts to shape
                       out,          # OUT, C-contiguous, shape; compute precision or float16 bits
                       bint log_target,
                       bint use_double,
                       int n_threads):  # from effective_n_threads; 1: no OpenMP region
    """Write the per-element losses into ``out``."""
    cdef Job job
    describe(&job, shape, x, t, None, -1)
    job.log_target = log_target
    run_blocks(&job, out, False, use_double, n_threads)


def kl_div_grad(tuple shape,         # the loss shape
                x,                   # IN, broadcasts to shape; float16 as uint16
                t,                   # IN, broadcasts to shape
                g,                   # IN, upstream gradient broadcasting to shape, or None
                double g_value,      # the upstream value for every element when g is None
                out,                 # OUT, C-contiguous, shape; compute precision or float16 bits
                bint log_target,
                bint wrt_target,
                bint use_double,
                int n_threads):      # from effective_n_threads; 1: no OpenMP region
    """Write d loss / d x (or d loss / d target when ``wrt_target``) times the upstream into ``out``."""
    cdef Job job
    describe(&job, shape, x, t, g, -1)
    job.log_target = log_target
    job.wrt_target = wrt_target
    job.g_scalar = g is None
    job.g_value = g_value
    run_blocks(&job, out, True, use_double, n_threads)


def kl_div_rows(tuple shape,              # the loss shape
                int axis,                 # the class axis, 0 <= axis < len(shape)
                x,                        # IN, broadcasts to shape; float16 as uint16
                t,                        # IN, broadcasts to shape
                double[::1] kl,           # OUT, one value per distribution, C order of the others
                double[::1] p_sums,       # OUT, sum of p per distribution, or None
                double[::1] q_sums,       # OUT, sum of exp(x) per distribution, or None
                const unsigned char[::1] select,  # IN, 0 skips a distribution, or None
                bint log_target,
                bint use_double,
                int n_threads):           # from effective_n_threads; 1: no OpenMP region
    """Write the KL of every distribution along ``axis`` into ``kl`` (and its sums)."""
    cdef Job job
    cdef Rows rows
    cdef Scratch scratch = Scratch()
    cdef int failed = 0
    describe(&job, shape, x, t, None, axis)
    job.log_target = log_target
    rows.length = shape[axis]
    n_rows = kl.shape[0]
    if rows.length == 0 or n_rows * rows.length != job.layout.size:
        raise ValueError(f"kl_div_rows: {n_rows} outputs for shape {shape} along axis {axis}")
    for name, array in (("p_sums", p_sums), ("q_sums", q_sums), ("select", select)):
        if array is not None and len(array) != n_rows:
            raise ValueError(f"kl_div_rows: {name} has {len(array)} values, not {n_rows}")
    if (p_sums is None) != (q_sums is None):
        raise ValueError("kl_div_rows: p_sums and q_sums come together")
    rows.kl = &kl[0]
    rows.p_sums = NULL if p_sums is None else &p_sums[0]
    rows.q_sums = NULL if q_sums is None else &q_sums[0]
    rows.select = NULL if select is None else &select[0]
    with nogil:
        if use_double:
            each_row(&job, &rows, scratch.data, n_threads, &failed)
        else:
            each_row(&job, &rows, <float *>scratch.data, n_threads, &failed)
    raise_if_failed(failed)
