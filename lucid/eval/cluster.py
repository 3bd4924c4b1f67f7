"""The evaluation job on a ``dask.distributed`` cluster (``--scheduler ADDRESS``).

Workers open the input files themselves, by path, one chunk of rows each, so
no input data passes through this process or the scheduler: the files must be
readable at the same path on every worker (a shared file system, or one
machine). Each task reads its chunk of the teacher once, compares it with the
same chunk of every student (:func:`lucid.eval.rows.compare_chunk`, as on one
machine) and sends back only the per-row values, which are reduced here
exactly as on one machine, so both give bitwise the same report.

The client is this job's own, never the process's default one: every call
goes through it (``client.submit``, and ``as_completed`` on its event loop),
so a job works whether or not another client exists.
"""
import contextlib

import numpy as np

from lucid.eval.report import progress_bar
from lucid.eval.rows import compare_chunk
from lucid.eval.sources import InputError, open_array


def rows_on_cluster(address, sources, label_source, buffers, chunk_rows, options,
                    show_progress):
    """Fill ``buffers`` on the cluster at ``address``; return the workers' thread count."""
    try:
        from distributed import as_completed
    except ImportError:
        raise InputError("a Dask scheduler needs Dask: pip install 'lucid[dask]'") from None
    try:
        client = _connect(address)
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(f"cannot connect to the Dask scheduler at {address!r} "
                         f"({' '.join(str(error).split())})") from None
    rows = buffers.kl.shape[1]
    with client:
        origins = [_origin(client, source) for source in sources]
        labels = None if label_source is None else _origin(client, label_source)
        futures = {}
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            future = client.submit(compare_on_worker, origins, labels, start, stop, options,
                                   pure=False)
            futures[future] = (start, stop)
        with progress_bar(show_progress, rows) as bar:
            # Chunks land in any order; each goes to its own rows, so the
            # per-row arrays, and the statistics over them, do not depend on it.
            for future in as_completed(list(futures), loop=client.loop):
                start, stop = futures[future]
                comparison, used = future.result()
                buffers.store(start, stop, comparison, used)
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


def _origin(client, source):
    """How a worker gets ``source``: its path to reopen, or the array itself, scattered once."""
    if source.origin is not None:
        return source.origin
    return client.scatter(np.asarray(source.read(0, source.shape[0])), broadcast=True)


def compare_on_worker(origins, labels_origin, start, stop, options):
    """Rows ``start:stop`` of every student against the teacher's, on a worker.

    ``origins`` (students then teacher) and ``labels_origin`` are the
    arguments that reopen a file (:func:`lucid.eval.sources.open_array`), or
    arrays.
    """
    chunks = [read_rows(origin, start, stop) for origin in origins]
    labels = None if labels_origin is None else read_rows(labels_origin, start, stop)
    return compare_chunk(chunks[:-1], chunks[-1], labels, options, start)


def read_rows(origin, start, stop):
    """Rows ``start:stop`` of ``origin``: an array, or what ``open_array(*origin)`` opens."""
    if isinstance(origin, np.ndarray):
        return origin[start:stop]
    with contextlib.closing(open_array(*origin)) as source:
        # A copy: the file's map is closed when this returns.
        return np.array(source.read(start, stop))
