"""Probes for the benchmarks and the tests only: nothing in lucid calls them.

They run the probe loops of ``probe_runs.h`` at the SIMD level in use (the
one ``_simd`` chose), so that they measure or check the code ``kl_div`` runs.

- :func:`read_both_sum`, the bandwidth probe: it reads two arrays once, in
  the same blocks, on the same number of threads and at the same SIMD level as
  ``kl_div``'s forward sum, and does nothing else: no kernel that reads both
  inputs can be faster, so ``kl_div`` timings read as a fraction of this
  machine's limit. It is a benchmark tool, not a kernel: the sum only keeps
  the compiler from dropping the reads, and it is an OpenMP reduction whose
  order, and so whose last bits, change with the thread count (unlike
  ``kl_div``'s fixed-order sum).
- :func:`apply_log` and :func:`apply_exp`, test hooks: the branchless log and
  exp of ``log_exp.h`` over an array, for the accuracy sweeps of
  ``tests/test_simd_log_exp.py``.
"""
from cython.parallel cimport prange

from lucid._ext._blocks cimport BLOCK, MIN_ELEMENTS_PER_THREAD
from lucid._ext._openmp_helpers cimport effective_n_threads, record_parallel
from lucid._ext._simd cimport lucid_probe_runs, probe_runs

ctypedef fused floating:
    float
    double

cdef inline double read_block(const lucid_probe_runs *runs, const floating[::1] a,
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
    cdef const lucid_probe_runs *runs = probe_runs()
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


def apply_log(a, out):
    """``out[:] = log(a)`` with the level in use (float32 or float64, same length)."""
    _apply(a, out, False)


def apply_exp(a, out):
    """``out[:] = exp(a)`` with the level in use (float32 or float64, same length)."""
    _apply(a, out, True)


def _apply(const floating[::1] a,  # IN
           floating[::1] out,      # OUT, same length as a
           bint exp):
    if out.shape[0] != a.shape[0]:
        raise ValueError(f"lengths {a.shape[0]} and {out.shape[0]} differ")
    if a.shape[0] == 0:
        return
    cdef const lucid_probe_runs *runs = probe_runs()
    with nogil:
        if floating is float:
            (runs.exp_f32 if exp else runs.log_f32)(&a[0], &out[0], a.shape[0])
        else:
            (runs.exp_f64 if exp else runs.log_f64)(&a[0], &out[0], a.shape[0])
