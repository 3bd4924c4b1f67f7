"""Large gradient arrays whose memory is reused from step to step (``buffer_cache.h``).

:func:`empty` makes an array with ``buffer_cache.h``'s numpy memory handler
(NEP 49): when the array goes, its memory is kept, already mapped, for the
next request of the same size, instead of going back to the operating
system. A training step frees last step's gradient and then makes one of the
same size; this hands it the same pages, which saves faulting in and zeroing
the whole array (for a 512 MB gradient, about as long as reading both
inputs). The arrays are ordinary numpy arrays in every other way: they own
their data (``base`` is None), and numpy frees them through the handler
they were made with, wherever that happens.

:func:`set_limit`, :func:`release` and :func:`stats` are the public
``lucid.set_cache_limit``, ``lucid.empty_cache`` and ``lucid.cache_info``
(``lucid/_buffers.py``).
"""
from cpython.pycapsule cimport PyCapsule_New

import numpy as np

cimport numpy as cnp

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMem_Handler:
        pass
    object PyDataMem_SetHandler(object handler)

cdef extern from "buffer_cache.h" nogil:
    ctypedef struct lucid_cache:
        void *lock
    lucid_cache lucid_cache_state
    PyDataMem_Handler lucid_cache_handler
    size_t LUCID_CACHE_MIN_BYTES
    size_t lucid_cache_set_limit(size_t limit)
    size_t lucid_cache_release()
    void lucid_cache_stats(size_t *held, int *count, unsigned long long *reused,
                           size_t *limit)

cdef extern from "pythread.h":
    void *PyThread_allocate_lock()

cnp.import_array()
lucid_cache_state.lock = PyThread_allocate_lock()
if lucid_cache_state.lock == NULL:
    raise MemoryError("lucid: no memory for the buffer cache's lock")

_HANDLER = PyCapsule_New(&lucid_cache_handler, "mem_handler", NULL)

MIN_BYTES = LUCID_CACHE_MIN_BYTES


def empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose memory comes from, and returns to, the cache.

    Arrays under ``MIN_BYTES`` are made as usual (numpy's own handler): the
    cache would save them little.
    """
    dtype = np.dtype(dtype)
    if np.prod(shape, dtype=np.int64) * dtype.itemsize < <Py_ssize_t>LUCID_CACHE_MIN_BYTES:
        return np.empty(shape, dtype)
    # The handler lives in a context variable: this thread's (or task's)
    # allocations only, and only until it is put back.
    previous = PyDataMem_SetHandler(_HANDLER)
    try:
        return np.empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def set_limit(size_t limit):
    """Set the most bytes the cache keeps (freeing the oldest blocks over it); returns the old limit."""
    return lucid_cache_set_limit(limit)


def release():
    """Free every kept block; returns the bytes freed."""
    return lucid_cache_release()


def stats():
    """``(bytes_held, blocks_held, requests_reused, limit)``."""
    cdef size_t held = 0, limit = 0
    cdef int count = 0
    cdef unsigned long long reused = 0
    lucid_cache_stats(&held, &count, &reused, &limit)
    return held, count, reused, limit
