"""How many threads lucid's kernels use.

The count lives in the OpenMP runtime itself (``omp_set_num_threads``), so
``OMP_NUM_THREADS`` at start-up and ``threadpoolctl.threadpool_limits`` act on
lucid exactly as they act on any other OpenMP library in the process.
"""
import numbers

from lucid._ext import _openmp_helpers

# The largest count the OpenMP runtime takes (a C int); larger requests mean "as
# many as allowed" and are capped to the CPUs anyway.
MAX_THREAD_COUNT = 2**31 - 1


def get_num_threads():
    """Return the number of threads lucid's kernels may use.

    Returns
    -------
    int
        The OpenMP thread count for the next parallel kernel (1 in a serial
        build). Small inputs run on one thread whatever this says.

    See Also
    --------
    set_num_threads : Change it.

    Notes
    -----
    The default is ``OMP_NUM_THREADS`` when set, else the CPUs this process may
    run on. ``threadpoolctl.threadpool_limits`` lowers it for the duration of a
    ``with`` block.

    Examples
    --------
    >>> import lucid
    >>> lucid.get_num_threads() >= 1
    True
    """
    return _openmp_helpers.get_max_threads()


def set_num_threads(n):
    """Set the number of threads lucid's kernels may use.

    Parameters
    ----------
    n : int
        Thread count, at least 1.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If ``n`` is not an integer (``bool`` and ``float`` included).
    ValueError
        If ``n < 1``.

    See Also
    --------
    get_num_threads : Read it back.

    Notes
    -----
    The count applies to kernels called from every Python thread of the
    process, not only the calling one (OpenMP's own count is per thread). It
    also sets the OpenMP runtime's count for the calling thread, shared with
    other OpenMP libraries that use the same runtime; other threads keep their
    own OpenMP count when it is lower (``threadpoolctl.threadpool_limits``, or
    the default: ``OMP_NUM_THREADS`` or the CPUs available). Kernels use at
    most four threads per CPU available, whatever is asked: more would only
    take turns, and tens of thousands would make the OpenMP runtime end the
    process. Results of the reductions do not depend on the count: they are
    bitwise identical for any count.

    Examples
    --------
    >>> import lucid
    >>> before = lucid.get_num_threads()
    >>> lucid.set_num_threads(1)
    >>> lucid.get_num_threads()
    1
    >>> lucid.set_num_threads(before)
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads expects an int >= 1, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads expects an int >= 1, got {n}")
    # Counts beyond a C int are capped like any count beyond the CPUs (see Notes).
    _openmp_helpers.set_max_threads(min(int(n), MAX_THREAD_COUNT))
