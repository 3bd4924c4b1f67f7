# How kl_div's kernels (_kl_div.pyx) split their work, shared with the
# bandwidth probe (_probes.pyx) so that it splits its reads into blocks and
# threads as kl_div's forward sum does. Declarations only: no module behind it.

cdef enum:
    # Logical elements per block: the unit of work, of determinism and of the
    # gather buffers.
    BLOCK = 4096
    # Below this many elements per thread an OpenMP fork/join costs more than it
    # saves. Measured on 2 cores (AVX-512): a parallel region costs a few
    # microseconds, 2 threads beat 1 from about 6000 elements per thread and
    # reach 1.6x at 16384 (see docs/performance.rst).
    MIN_ELEMENTS_PER_THREAD = 16384
