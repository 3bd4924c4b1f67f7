"""A read-both-inputs probe: the memory-bandwidth limit the benchmarks measure kl_div against.

``read_both_sum(a, b)`` reads two arrays once, in the same blocks, on the same
number of threads and at the same SIMD level as ``kl_div``'s forward sum, and
does nothing else: no kernel that reads both inputs can be faster, so
``kl_div`` timings read as a fraction of this machine's limit. It is a
benchmark tool, not a kernel: the sum only keeps the compiler from dropping
the reads, and it is an OpenMP reduction whose order, and so whose last bits,
change with the thread count (unlike ``kl_div``'s fixed-order sum).
"""
from cython.parallel cimport prange

from lucid._ext._blocks cimport BLOCK, MIN_ELEMENTS_PER_THREAD
from lucid._ext._openmp_helpers cimport effective_n_threads, record_parallel
from lucid._ext._simd cimport kl_runs, lucid_kl_runs

ctypedef fused floating:
    float
    double

cdef inline double read_block(const lucid_kl_runs *runs, const floating[::1] a,
                              const floating[::1] b, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t start = k * BLOCK
    if floating is float:
        return runs.read_both_f32(&a[start], &b[start], min(BLOCK, n - start))
    else:
        return runs.read_both_f64(&a[start], &b[start], min(BLOCK, n - start))


def read_both_sum(const floating[::1] a,  # IN
                  const floating[::1] b):  # IN, same length as a
    """Read two contiguous 1-D arrays once; return the float64 sum of ``a + b``.

    The total is there to keep the reads; its last bits depend on the thread count.
    """
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"read_both_sum: lengths {a.shape[0]} and {b.shape[0]} differ")
    cdef const lucid_kl_runs *runs = kl_runs()
    cdef Py_ssize_t n = a.shape[0]
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef int n_threads = effective_n_threads(n, MIN_ELEMENTS_PER_THREAD)
    cdef Py_ssize_t k
    cdef double total = 0.0
    with nogil:
        if n_threads > 1:
            record_parallel()
            for k in prange(n_blocks, schedule="static", num_threads=n_threads):
                total += read_block(runs, a, b, k, n)
        else:
            for k in range(n_blocks):
                total += read_block(runs, a, b, k, n)
    return total
