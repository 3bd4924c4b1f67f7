"""The one place lucid talks to the OpenMP runtime.

Every call goes through ``#ifdef _OPENMP`` fallbacks so a serial build (a
compiler without OpenMP) still imports and runs. Kernels ask
:func:`effective_n_threads` how many threads a piece of work deserves, so small
inputs never pay for an OpenMP fork/join. The Python wrappers ask it once per
call and pass the count into the kernels; a kernel calls
:func:`record_parallel` where it enters an OpenMP region.
"""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define LUCID_OPENMP 1
    #else
    #define LUCID_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_procs(void) { return 1; }
    static void omp_set_num_threads(int n) { (void)n; }
    #endif
    #ifndef LUCID_COMPILE_ARGS
    #define LUCID_COMPILE_ARGS ""
    #endif
    """
    int LUCID_OPENMP
    const char *LUCID_COMPILE_ARGS
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_procs() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil

# Set in a process forked after the parent ran OpenMP: such a child must not
# enter an OpenMP region (the GNU runtime can hang there), so it runs serially.
cdef int _forced_serial = 0
# Set once a kernel has entered an OpenMP region with more than one thread, i.e.
# this process has started (or inherited, through fork) OpenMP worker threads.
cdef int _entered_parallel = 0
# The last set_max_threads(n) for the whole process (0: never set). OpenMP's own
# count is per thread: omp_set_num_threads leaves every other Python thread at
# the default, so this caps kernels called from any thread.
cdef int _process_max_threads = 0


def openmp_enabled():
    """Return True when the extension was compiled with OpenMP."""
    return bool(LUCID_OPENMP)


def compile_args():
    """Return the compiler flags the kernels were built with, as a string."""
    return LUCID_COMPILE_ARGS.decode()


def get_max_threads():
    """Return the thread count a kernel called from this thread may use now."""
    if _forced_serial:
        return 1
    return capped_max_threads()


def set_max_threads(int n):
    """Set the thread count for later kernels, in every thread (``n >= 1``)."""
    global _process_max_threads
    _process_max_threads = n
    omp_set_num_threads(n)


cdef enum:
    # Beyond the CPUs, threads only take turns; far beyond them (tens of
    # thousands) the OpenMP runtime fails to create them and ends the process.
    MAX_THREADS_PER_CPU = 4


cdef inline int capped_max_threads() noexcept nogil:
    """This thread's OpenMP count (threadpoolctl lowers it), capped by set_max_threads
    and by MAX_THREADS_PER_CPU threads per CPU this process may run on."""
    cdef int n = omp_get_max_threads()
    cdef int limit = MAX_THREADS_PER_CPU * omp_get_num_procs()
    if 0 < _process_max_threads < n:
        n = _process_max_threads
    return limit if 0 < limit < n else n


def force_serial(bint serial):
    """Run every kernel on one thread without entering OpenMP (fork safety)."""
    global _forced_serial
    _forced_serial = serial


def is_forced_serial():
    """Return True when kernels are held to one thread without OpenMP."""
    return bool(_forced_serial)


def entered_parallel():
    """Return True once a kernel in this process (or a fork parent) ran in parallel."""
    return bool(_entered_parallel)


cpdef int effective_n_threads(Py_ssize_t n_work, Py_ssize_t min_work_per_thread) noexcept nogil:
    """Threads worth using for ``n_work`` items: 1 (no OpenMP region) when small.

    A query only: the kernel given the count records entering OpenMP
    (:func:`record_parallel`).
    """
    cdef int max_threads
    cdef Py_ssize_t useful
    if _forced_serial or min_work_per_thread < 1:
        return 1
    max_threads = capped_max_threads()
    useful = n_work // min_work_per_thread
    if useful < 2 or max_threads < 2:
        return 1
    if useful < max_threads:
        return <int>useful
    return max_threads


cdef void record_parallel() noexcept nogil:
    """Called by a kernel right before it enters an OpenMP region of several threads."""
    global _entered_parallel
    _entered_parallel = 1
