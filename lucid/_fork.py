"""Fork safety: a child forked after lucid ran OpenMP runs its kernels serially.

GNU OpenMP (libgomp) keeps its worker threads alive after the first parallel
region. ``fork()`` copies only the calling thread, yet the child's copy of the
runtime still counts on those workers, so the child's first parallel region
waits for them forever. That is what a ``multiprocessing`` pool started with the
'fork' method (the Linux default before Python 3.14) runs into.

Importing this module registers an after-fork hook: in a child whose parent had
run a parallel kernel, every kernel runs on one thread without entering OpenMP,
and a ``RuntimeWarning`` (once, at the fork) says so and how to keep the
threads. A child of a parent that never ran in parallel keeps its threads.
OpenMP regions entered by other libraries in the parent are not seen here.
"""
import os
import warnings

from lucid._ext import _openmp_helpers

FORK_WARNING = (
    "lucid: this process was forked after lucid ran OpenMP threads in its parent; the "
    "OpenMP runtime cannot start threads again after fork (it would hang), so lucid runs "
    "on one thread in this process. To keep the threads in child processes, use the "
    "'spawn' or 'forkserver' start method, e.g. multiprocessing.get_context('spawn')."
)


def _serial_after_fork_in_child():
    if _openmp_helpers.entered_parallel() and not _openmp_helpers.is_forced_serial():
        # Serial first, so that even a warnings filter set to "error" leaves the child safe.
        _openmp_helpers.force_serial(True)
        warnings.warn(FORK_WARNING, RuntimeWarning, stacklevel=2)


os.register_at_fork(after_in_child=_serial_after_fork_in_child)
