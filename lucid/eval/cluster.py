"""The evaluation job on a ``dask.distributed`` cluster (``--scheduler ADDRESS``).

Workers open the input files themselves, by path, one chunk of rows each, so
no input data passes through this process or the scheduler: the files must be
readable at the same path on every worker (a shared file system, or one
machine). Each chunk runs :func:`lucid.dask.kl_div_per_row`; only the per-row
values (8 bytes a row) come back, and are reduced here exactly as on one
machine, so both give bitwise the same answer.
"""
import contextlib

import numpy as np

from lucid.eval.report import progress_bar
from lucid.eval.sources import InputError, open_array


def per_row_on_cluster(address, sources, per_row, chunk_rows, options, show_progress):
    """Fill ``per_row`` on the cluster at ``address``; return the workers' thread count."""
    try:
        import dask
        import dask.array as da
        from distributed import as_completed

        import lucid.dask
    except ImportError:
        raise InputError("a Dask scheduler needs Dask: pip install 'lucid[dask]'") from None
    try:
        client = _connect(address)
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(f"cannot connect to the Dask scheduler at {address!r} "
                         f"({' '.join(str(error).split())})") from None
    with client:
        bounds = [(start, min(start + chunk_rows, per_row.shape[0]))
                  for start in range(0, per_row.shape[0], chunk_rows)]
        student, teacher = (_dask_rows(da, dask, source, bounds) for source in sources)
        lazy = lucid.dask.kl_div_per_row(student, teacher, student_kind=options.student_kind,
                                         teacher_kind=options.teacher_kind,
                                         temperature=options.temperature)
        futures = client.compute(list(lazy.to_delayed().ravel()))
        where = dict(zip(futures, bounds))
        with progress_bar(show_progress, per_row.shape[0]) as bar:
            # Blocks land in any order; each goes to its own rows, so the
            # per-row array, and the reduction over it, do not depend on it.
            for future in as_completed(futures):
                start, stop = where[future]
                per_row[start:stop] = future.result()
                bar.update(stop - start)
        return sum(client.nthreads().values())


def _connect(address):
    """A ``distributed.Client`` of the scheduler at ``address``, closed again if it fails."""
    from distributed import Client

    class ClosingClient(Client):
        # A Client whose start fails is left half-made, its event loop running:
        # its __del__ at exit then waits 20 s and prints a traceback.
        def start(self, **kwargs):
            try:
                super().start(**kwargs)
            except BaseException:
                self.close()
                raise

    return ClosingClient(address, timeout="10s", set_as_default=False)


def _dask_rows(da, dask, source, bounds):
    """A Dask array of ``source`` in chunks of rows ``bounds``, read on the workers."""
    if source.origin is None:
        return da.from_array(source.read(0, source.shape[0]),
                             chunks=([b - a for a, b in bounds], *source.shape[1:]))
    chunks = [da.from_delayed(dask.delayed(read_rows, pure=True)(source.origin, start, stop),
                              shape=(stop - start, *source.shape[1:]), dtype=source.dtype)
              for start, stop in bounds]
    return da.concatenate(chunks)


def read_rows(origin, start, stop):
    """Rows ``start:stop`` of the array that ``open_array(*origin)`` opens, in memory."""
    with contextlib.closing(open_array(*origin)) as source:
        # A copy: a task's result outlives the file's map and may travel.
        return np.array(source.read(start, stop))
