# OpenMP access for lucid's kernels. The Python wrappers ask effective_n_threads
# once per call and pass the count in; a kernel calls record_parallel where it
# enters an OpenMP region of several threads.
cpdef int effective_n_threads(Py_ssize_t n_work, Py_ssize_t min_work_per_thread) noexcept nogil
cdef void record_parallel() noexcept nogil
