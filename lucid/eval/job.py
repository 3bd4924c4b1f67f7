"""The evaluation job: students compared with a teacher row by row, chunk by chunk.

:func:`evaluate` is what ``lucid-eval`` runs. It checks every option
before reading any data, reads the inputs in chunks of rows (so files larger
than memory work; the teacher's chunk once for every student), compares them
on this machine's cores or, with ``scheduler``, on a Dask cluster
(:mod:`lucid.eval.rows`), and computes the report's statistics over all rows
(:mod:`lucid.eval.stats`).
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
from lucid import _kl_rules
from lucid.eval.report import (EvalResult, per_row_stats_arrays, progress_bar,
                               write_npy_atomically, write_npz_atomically)
from lucid.eval.rows import RowBuffers, compare_chunk
from lucid.eval.sources import InputError, open_array
from lucid.eval.stats import kl_statistics, label_statistics
from lucid.metrics.per_row import KINDS, check_temperature

REDUCTIONS = _kl_rules.SCALAR_REDUCTIONS  # what --reduction accepts
# Bytes of each input per chunk: large enough that per-chunk overhead vanishes
# and both cores get work, small enough that two chunks are a small fraction
# of the memory the job promises to stay under.
CHUNK_BYTES = 8 * 2**20
# Rows of wide inputs (a 32000-token vocabulary: 65 rows in 8 MiB) are taken at
# least this many at a time, up to MAX_CHUNK_BYTES: every chunk costs each
# thread a fork and a join, which a busy machine makes slow.
MIN_CHUNK_ROWS, MAX_CHUNK_BYTES = 256, 32 * 2**20


@dataclasses.dataclass(frozen=True)
class Options:
    """What to compute, checked: see :func:`evaluate` for the meaning of each field."""

    student_kind: str = "logits"
    teacher_kind: str = "logits"
    temperature: float = 1.0
    reduction: str = "batchmean"
    ignore_index: int = -100
    chunk_rows: int = None
    threads: int = None
    scheduler: str = None

    def __post_init__(self):
        for name in ("student_kind", "teacher_kind"):
            if getattr(self, name) not in KINDS:
                raise InputError(f"{name} must be one of {', '.join(KINDS)}; "
                                 f"got {getattr(self, name)!r}")
        try:
            _kl_rules.check_reduction(self.reduction, REDUCTIONS)
        except ValueError as error:
            raise InputError(str(error)) from None
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
        if isinstance(self.ignore_index, bool) or not isinstance(self.ignore_index,
                                                                 numbers.Integral):
            raise InputError(f"ignore_index must be an integer, got {self.ignore_index!r}")
        for name in ("chunk_rows", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, numbers.Integral) or value < 1):
                raise InputError(f"{name} must be an integer >= 1, got {value!r}")
        if self.threads is not None and self.scheduler is not None:
            raise InputError("threads apply to this machine; the workers of a Dask cluster "
                             "keep their own thread counts")


def evaluate(student, teacher, *, student_key=None, teacher_key=None, labels=None,
             labels_key=None, per_row_path=None, per_row_stats_path=None, progress=None,
             **options):
    """Compare one or several students with a teacher, row by row, over arrays or files.

    Parameters
    ----------
    student : str, os.PathLike, numpy.ndarray, or a list of them
        The student's outputs: a ``.npy`` file, an ``.npz`` archive, a
        ``.safetensors`` file or an array, of shape ``(N, C)`` or
        ``(N, ..., C)`` (``C`` classes, one distribution per row). A list
        compares several students with one teacher, reading the teacher once.
    teacher : str, os.PathLike or numpy.ndarray
        The teacher's outputs, of the students' shape.
    student_key, teacher_key : str, optional
        The array of an ``.npz`` or ``.safetensors`` file holding several
        (one key for every student).
    labels : str, os.PathLike or numpy.ndarray, optional
        Integer class of the observed outcome (e.g. the next token) of every
        row, of shape ``(N, ...)``: adds perplexities and the change in the
        label's probability to the statistics.
    labels_key : str, optional
        The array of a labels archive holding several.
    per_row_path : str or os.PathLike, optional
        Where to write the per-row KL: one student, a float64 ``.npy`` of
        shape ``(N, ...)``; several, an ``.npz`` with one such array per
        student, keyed ``student0``, ``student1``, ... Written whole or not at
        all.
    per_row_stats_path : str or os.PathLike, optional
        Where to write an ``.npz`` of every row's ``kl``, ``same_top`` and,
        with labels, ``nll_student``, ``nll_teacher`` and ``delta_p``, each
        with a leading axis of one entry per student.
    progress : bool, optional
        Show a progress bar on stderr (needs tqdm). Default: when stderr is a
        terminal.
    **options
        ``student_kind``, ``teacher_kind`` ("logits", "log-probs", "probs";
        default "logits"), ``temperature`` (default 1.0, divides logits),
        ``reduction`` ("batchmean", "mean", "sum"; default "batchmean"),
        ``ignore_index`` (default -100: rows with this label are left out),
        ``chunk_rows`` (rows of the first axis per chunk; default about
        8 MiB of each input, at least 256 rows up to 32 MiB), ``threads``
        (default: lucid's thread count),
        ``scheduler`` (a ``dask.distributed`` scheduler address).

    Returns
    -------
    EvalResult or list of EvalResult
        One result (a list of them, in order, for a list of students): the
        reduced KL, the statistics of the report, the per-row values and how
        the job ran.

    Raises
    ------
    InputError
        For a bad option or input: a missing or unreadable file, an array of
        Python objects, a pickle, a non-numeric dtype, fewer than 2
        dimensions, different shapes, a label outside ``[0, C)`` that is not
        the ignore index, an output path that cannot be written.

    See Also
    --------
    lucid.metrics.compare_rows : The per-row comparison behind it.

    Notes
    -----
    ``"batchmean"`` is the mean KL per row, where rows are all positions of
    the leading axes (``N * ...``); ``"mean"`` divides by the elements as well
    (rows times classes); ``"sum"`` adds the rows up. Rows whose label is the
    ignore index are left out of every statistic and of ``kl``; ``rows``
    still counts them. The statistics (``result.stats``) follow llama.cpp's
    ``perplexity --kl-divergence``; see the evaluation guide.

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
    >>> result.stats["kld_max"], result.stats["same_top"]
    (0.0474..., 1.0)

    With labels, and two students against the one teacher:

    >>> labels = np.array([0, 2])
    >>> first, second = evaluate([student, teacher], teacher, labels=labels)
    >>> round(first.stats["ppl_student"], 4), round(second.stats["ppl_ratio"], 4)
    (2.2728, 1.0)
    """
    start_time = time.perf_counter()
    several = isinstance(student, (list, tuple))
    students = list(student) if several else [student]
    if not students:
        raise InputError("give at least one student")
    options = Options(**options)
    inputs = [*students, teacher] + ([] if labels is None else [labels])
    for path, what in [(per_row_path, "per-row output"),
                       (per_row_stats_path, "per-row stats output")]:
        if path is not None:
            check_output_path(path, inputs, what)
    with ExitStack() as stack:
        roles = [f"student {i + 1}" if len(students) > 1 else "student"
                 for i in range(len(students))]
        sources = [stack.enter_context(closing(open_array(source, key, role)))
                   for source, key, role in [*zip(students, [student_key] * len(students), roles),
                                             (teacher, teacher_key, "teacher")]]
        label_source = None
        if labels is not None:
            label_source = stack.enter_context(closing(open_array(labels, labels_key, "labels")))
        shape = _common_shape(sources, label_source)
        buffers = RowBuffers(len(students), shape[:-1], label_source is not None)
        chunk_rows = options.chunk_rows or _default_chunk_rows(sources)
        show = sys.stderr.isatty() if progress is None else progress
        threads = _compute_rows(sources, label_source, buffers, chunk_rows, options, show)
    run = dict(shape=shape, threads=threads, seconds=time.perf_counter() - start_time,
               options=options)
    results = [_result(buffers, i, _name(students[i], i), run) for i in range(len(students))]
    _write_outputs(results, per_row_path, per_row_stats_path)
    if per_row_path is not None:
        results = [dataclasses.replace(r, per_row_path=os.fspath(per_row_path)) for r in results]
    return results if several else results[0]


def reduce_per_row(per_row, classes, reduction):
    """The job's reduction of the per-row KL values (``classes`` divides for "mean")."""
    # numpy's pairwise sum over the whole array: fixed order, independent of the
    # chunking, so this machine and a cluster give bitwise the same answer.
    total = float(np.sum(per_row))
    return _kl_rules.reduce_total(total, reduction, elements=per_row.size * classes, rows=per_row.size)


def _result(buffers, index, name, run):
    """The :class:`EvalResult` of student ``index`` from the filled buffers."""
    options, shape = run["options"], run["shape"]
    kl, same_top = buffers.kl[index], buffers.same_top[index]
    used = buffers.used
    kl_used = kl if used is None else kl[used]
    rows_ignored = 0 if used is None else int(used.size - np.count_nonzero(used))
    stats = kl_statistics(kl_used.ravel(), (same_top if used is None else same_top[used]).ravel(),
                          rows_ignored)
    student_nll = teacher_nll = None
    if used is not None:
        student_nll, teacher_nll = -buffers.student_logprob[index], -buffers.teacher_logprob
        stats.update(label_statistics(student_nll[used], teacher_nll[used]))
    return EvalResult(kl=reduce_per_row(kl_used, shape[-1], options.reduction),
                      reduction=options.reduction, shape=shape, threads=run["threads"],
                      seconds=run["seconds"], per_row=kl, student_kind=options.student_kind,
                      teacher_kind=options.teacher_kind, temperature=float(options.temperature),
                      scheduler=options.scheduler, stats=stats, path=name, same_top=same_top,
                      used=used, student_nll=student_nll, teacher_nll=teacher_nll)


def _name(source, index):
    """How the report names a student: its path, or ``student<i>`` for an array."""
    return f"student{index}" if isinstance(source, np.ndarray) else os.fspath(source)


def _write_outputs(results, per_row_path, per_row_stats_path):
    if per_row_path is not None:
        if len(results) > 1:
            write_npz_atomically(per_row_path, {f"student{i}": r.per_row
                                                for i, r in enumerate(results)})
        else:
            write_npy_atomically(per_row_path, results[0].per_row)
    if per_row_stats_path is not None:
        write_npz_atomically(per_row_stats_path, per_row_stats_arrays(results))


def _compute_rows(sources, label_source, buffers, chunk_rows, options, show_progress):
    """Fill ``buffers`` chunk by chunk; return the number of threads that did it."""
    if options.scheduler is not None:
        from lucid.eval.cluster import rows_on_cluster
        return rows_on_cluster(options.scheduler, sources, label_source, buffers, chunk_rows,
                               options, show_progress)
    before = lucid.get_num_threads()
    if options.threads is not None:
        lucid.set_num_threads(options.threads)
    rows = buffers.kl.shape[1]
    try:
        with progress_bar(show_progress, rows) as bar:
            for start in range(0, rows, chunk_rows):
                stop = min(start + chunk_rows, rows)
                # The teacher's chunk is read once and compared with every student's.
                chunks = [source.read(start, stop) for source in sources]
                labels = None if label_source is None else label_source.read(start, stop)
                comparison, used = compare_chunk(chunks[:-1], chunks[-1], labels, options, start)
                buffers.store(start, stop, comparison, used)
                bar.update(stop - start)
        return lucid.get_num_threads()
    finally:
        lucid.set_num_threads(before)


def _common_shape(sources, label_source):
    teacher = sources[-1]
    for student in sources[:-1]:
        if student.shape != teacher.shape:
            raise InputError(f"shapes differ: {student.label} has {student.shape}, "
                             f"{teacher.label} has {teacher.shape}")
    if label_source is not None and label_source.shape != teacher.shape[:-1]:
        raise InputError(f"{label_source.label} has shape {label_source.shape}; the rows of "
                         f"{teacher.label} have shape {teacher.shape[:-1]}")
    return teacher.shape


def _default_chunk_rows(sources):
    row_bytes = max(math.prod(s.shape[1:]) * s.dtype.itemsize for s in sources)
    rows = CHUNK_BYTES // row_bytes
    if rows < MIN_CHUNK_ROWS:
        rows = min(MIN_CHUNK_ROWS, MAX_CHUNK_BYTES // row_bytes)
    return max(1, rows)


def check_output_path(path, inputs, what="per-row output"):
    """Fail before any work if the output ``what`` could not be written at ``path``."""
    path = os.fspath(path)
    if not path:
        raise InputError(f"{what} path is empty")
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory")
    # A regular file is replaced through a symbolic link's target, in its directory.
    directory = os.path.dirname(os.path.realpath(path))
    if os.path.exists(path) and not os.path.isfile(path):
        # A FIFO or a device is written into, not replaced: it must be writable itself.
        if not os.access(path, os.W_OK):
            raise InputError(f"{what} {path!r} is not writable")
    elif not os.path.isdir(directory):
        raise InputError(f"{what} {path!r}: directory {directory!r} does not exist")
    elif not os.access(directory, os.W_OK):
        raise InputError(f"{what} {path!r}: directory {directory!r} is not writable")
    for source in inputs:
        if (not isinstance(source, np.ndarray) and os.path.exists(path)
                and os.path.exists(source) and os.path.samefile(path, source)):
            raise InputError(f"{what} {path!r} is an input file; it would be replaced")
