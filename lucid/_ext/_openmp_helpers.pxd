# OpenMP access for lucid's kernels: every kernel asks here how many threads to use.
cdef int effective_n_threads(Py_ssize_t n_work, Py_ssize_t min_work_per_thread) noexcept nogil
