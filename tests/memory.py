"""Measuring the memory a call allocates, for the tests that promise none input-sized."""
import tracemalloc


def traced_peak(function, warm_up=True):
    """Peak bytes traced while ``function()`` runs (numpy buffers included).

    ``warm_up`` calls it once untraced first, so that one-time allocations
    (imports, caches, thread pools) do not count.
    """
    if warm_up:
        function()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
