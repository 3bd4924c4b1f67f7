"""The evaluation job: KL(teacher || student) per row over two arrays, chunk by chunk.

:func:`evaluate` is what ``python -m lucid.eval`` runs. It checks every option
before reading any data, reads both inputs in chunks of rows (so files larger
than memory work), runs the fused row kernel on each chunk on this machine's
cores or, with ``scheduler``, on a Dask cluster, and reduces the per-row values.
"""
import dataclasses
import math
import numbers
import os
import sys
import time
from contextlib import ExitStack, closing

import numpy as np

import lucid
from lucid.eval.report import EvalResult, progress_bar, write_npy_atomically
from lucid.eval.sources import InputError, open_array
from lucid.metrics.per_row import KINDS, check_temperature, kl_div_per_row

REDUCTIONS = ("batchmean", "mean", "sum")
# Bytes of each input per chunk: large enough that per-chunk overhead vanishes
# and both cores get work, small enough that two chunks are a small fraction
# of the memory the job promises to stay under.
CHUNK_BYTES = 8 * 2**20


@dataclasses.dataclass(frozen=True)
class Options:
    """What to compute, checked: see :func:`evaluate` for the meaning of each field."""

    student_kind: str = "logits"
    teacher_kind: str = "logits"
    temperature: float = 1.0
    reduction: str = "batchmean"
    chunk_rows: int = None
    threads: int = None
    scheduler: str = None

    def __post_init__(self):
        for name in ("student_kind", "teacher_kind"):
            if getattr(self, name) not in KINDS:
                raise InputError(f"{name} must be one of {', '.join(KINDS)}; "
                                 f"got {getattr(self, name)!r}")
        if self.reduction not in REDUCTIONS:
            raise InputError(f"reduction must be one of {', '.join(REDUCTIONS)}; "
                             f"got {self.reduction!r}")
        try:
            check_temperature(self.temperature)
        except ValueError as error:
            raise InputError(str(error)) from None
        # Logits are multiplied by 1/T: a T this small would make every row NaN.
        if not math.isfinite(1 / float(self.temperature)):
            raise InputError(f"temperature {float(self.temperature)!r} is too small: "
                             "1/temperature overflows to infinity")
        if self.temperature != 1 and "logits" not in (self.student_kind, self.teacher_kind):
            raise InputError(f"temperature {self.temperature} divides logits, but the student "
                             f"and the teacher are {self.student_kind} and {self.teacher_kind}")
        for name in ("chunk_rows", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, numbers.Integral) or value < 1):
                raise InputError(f"{name} must be an integer >= 1, got {value!r}")
        if self.threads is not None and self.scheduler is not None:
            raise InputError("threads apply to this machine; the workers of a Dask cluster "
                             "keep their own thread counts")


def evaluate(student, teacher, *, student_key=None, teacher_key=None, per_row_path=None,
             progress=None, **options):
    """Compute KL(teacher || student) per row over two arrays or files, and reduce it.

    Parameters
    ----------
    student, teacher : str, os.PathLike or numpy.ndarray
        ``.npy`` files, ``.npz`` archives or arrays of one shape ``(N, C)`` or
        ``(N, ..., C)``: ``C`` classes, one distribution per row.
    student_key, teacher_key : str, optional
        The array of an ``.npz`` archive holding several.
    per_row_path : str or os.PathLike, optional
        Where to write the per-row KL, float64 ``.npy`` of shape ``shape[:-1]``;
        written whole or not at all.
    progress : bool, optional
        Show a progress bar on stderr (needs tqdm). Default: when stderr is a
        terminal.
    **options
        ``student_kind``, ``teacher_kind`` ("logits", "log-probs", "probs";
        default "logits"), ``temperature`` (default 1.0, divides logits),
        ``reduction`` ("batchmean", "mean", "sum"; default "batchmean"),
        ``chunk_rows`` (rows of the first axis per chunk; default about
        8 MiB of each input), ``threads`` (default: lucid's thread count),
        ``scheduler`` (a ``dask.distributed`` scheduler address).

    Returns
    -------
    EvalResult
        The reduced KL, the per-row values and how the job ran.

    Raises
    ------
    InputError
        For a bad option or input: a missing or unreadable file, an array of
        Python objects, a non-numeric dtype, fewer than 2 dimensions,
        different shapes, an output path that cannot be written.

    Notes
    -----
    ``"batchmean"`` is the mean KL per row, where rows are all positions of
    the leading axes (``N * ...``); ``"mean"`` divides by the elements as well
    (rows times classes); ``"sum"`` adds the rows up.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.eval import evaluate
    >>> teacher = np.array([[2.0, 0.5, 0.1], [0.3, 0.3, 0.3]])
    >>> student = np.array([[1.5, 0.7, 0.2], [0.0, 0.0, 0.0]])
    >>> result = evaluate(student, teacher)
    >>> result.kl, result.rows, result.classes
    (0.0237..., 2, 3)
    >>> result.per_row
    array([0.0474..., 0.        ])
    """
    start_time = time.perf_counter()
    options = Options(**options)
    if per_row_path is not None:
        _check_output_path(per_row_path, [student, teacher])
    with ExitStack() as stack:
        sources = [stack.enter_context(closing(open_array(source, key, role)))
                   for source, key, role in [(student, student_key, "student"),
                                             (teacher, teacher_key, "teacher")]]
        shape = _common_shape(*sources)
        per_row = np.empty(shape[:-1], dtype=np.float64)
        chunk_rows = options.chunk_rows or _default_chunk_rows(sources)
        show = sys.stderr.isatty() if progress is None else progress
        threads = _compute_per_row(sources, per_row, chunk_rows, options, show)
    kl = reduce_per_row(per_row, shape[-1], options.reduction)
    if per_row_path is not None:
        write_npy_atomically(per_row_path, per_row)
    return EvalResult(kl=kl, reduction=options.reduction, shape=shape, threads=threads,
                      seconds=time.perf_counter() - start_time, per_row=per_row,
                      student_kind=options.student_kind, teacher_kind=options.teacher_kind,
                      temperature=float(options.temperature), scheduler=options.scheduler,
                      per_row_path=None if per_row_path is None else os.fspath(per_row_path))


def reduce_per_row(per_row, classes, reduction):
    """The job's reduction of the per-row KL values (``classes`` divides for "mean")."""
    # numpy's pairwise sum over the whole array: fixed order, independent of the
    # chunking, so this machine and a cluster give bitwise the same answer.
    total = float(np.sum(per_row))
    if reduction == "sum":
        return total
    return total / (per_row.size * (classes if reduction == "mean" else 1))


def _compute_per_row(sources, per_row, chunk_rows, options, show_progress):
    """Fill ``per_row``; return the number of threads that did it."""
    if options.scheduler is not None:
        from lucid.eval.cluster import per_row_on_cluster
        return per_row_on_cluster(options.scheduler, sources, per_row, chunk_rows, options,
                                  show_progress)
    before = lucid.get_num_threads()
    if options.threads is not None:
        lucid.set_num_threads(options.threads)
    try:
        with progress_bar(show_progress, per_row.shape[0]) as bar:
            for start in range(0, per_row.shape[0], chunk_rows):
                stop = min(start + chunk_rows, per_row.shape[0])
                kl_div_per_row(sources[0].read(start, stop), sources[1].read(start, stop),
                               student_kind=options.student_kind,
                               teacher_kind=options.teacher_kind,
                               temperature=options.temperature, out=per_row[start:stop])
                bar.update(stop - start)
        return lucid.get_num_threads()
    finally:
        lucid.set_num_threads(before)


def _common_shape(student, teacher):
    if student.shape != teacher.shape:
        raise InputError(f"shapes differ: {student.label} has {student.shape}, "
                         f"{teacher.label} has {teacher.shape}")
    return student.shape


def _default_chunk_rows(sources):
    row_bytes = max(math.prod(s.shape[1:]) * s.dtype.itemsize for s in sources)
    return max(1, CHUNK_BYTES // row_bytes)


def _check_output_path(path, inputs):
    """Fail before any work if the per-row file could not be written where asked."""
    path = os.fspath(path)
    if not path:
        raise InputError("per-row output path is empty")
    if os.path.isdir(path):
        raise InputError(f"per-row output {path!r} is a directory")
    # A regular file is replaced through a symbolic link's target, in its directory.
    directory = os.path.dirname(os.path.realpath(path))
    if os.path.exists(path) and not os.path.isfile(path):
        # A FIFO or a device is written into, not replaced: it must be writable itself.
        if not os.access(path, os.W_OK):
            raise InputError(f"per-row output {path!r} is not writable")
    elif not os.path.isdir(directory):
        raise InputError(f"per-row output {path!r}: directory {directory!r} does not exist")
    elif not os.access(directory, os.W_OK):
        raise InputError(f"per-row output {path!r}: directory {directory!r} is not writable")
    for source in inputs:
        if (not isinstance(source, np.ndarray) and os.path.exists(path)
                and os.path.exists(source) and os.path.samefile(path, source)):
            raise InputError(f"per-row output {path!r} is an input file; it would be replaced")
