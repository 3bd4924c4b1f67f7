"""What an evaluation job hands back and writes: the result, its JSON, the per-row files,
progress.

The human table lives in :mod:`lucid.eval.table`; the statistics in
:mod:`lucid.eval.stats`.
"""
import contextlib
import dataclasses
import io
import json
import math
import os
import sys
import uuid

import numpy as np


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """The outcome of :func:`lucid.eval.evaluate`.

    Attributes
    ----------
    kl : float
        The reduced KL(teacher || student).
    reduction : str
        "batchmean", "mean" or "sum".
    shape : tuple of int
        The inputs' shape, ``(N, ..., C)``.
    threads : int
        Threads that computed it: this machine's, or all of a cluster's workers'.
    seconds : float
        Wall time of the job.
    per_row : numpy.ndarray
        float64, shape ``shape[:-1]``: the KL of every row.
    student_kind, teacher_kind : str
        What the inputs held.
    temperature : float
        The temperature that divided logits.
    scheduler : str or None
        The Dask scheduler's address, when one ran the job.
    per_row_path : str or None
        Where the per-row values were written.
    stats : dict
        The report's statistics over the rows in use, keyed as in ``--json``
        (see :data:`lucid.eval.stats.STAT_KEYS`): fractions, NaN where
        undefined.
    path : str or None
        The student's file, or ``student<i>`` for an array.
    same_top : numpy.ndarray or None
        bool, shape ``shape[:-1]``: whether the student's and the teacher's
        most likely classes agree, per row.
    used : numpy.ndarray or None
        bool, shape ``shape[:-1]``: the rows in use (label not the ignore
        index); None without labels, when every row is.
    student_nll, teacher_nll : numpy.ndarray or None
        float64, shape ``shape[:-1]``: minus the log-probability of each row's
        label (NaN for ignored rows); None without labels.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.eval import evaluate
    >>> result = evaluate(np.array([[1.5, 0.7, 0.2]]), np.array([[2.0, 0.5, 0.1]]))
    >>> result.reduction, result.shape, result.student_kind
    ('batchmean', (1, 3), 'logits')
    """

    kl: float
    reduction: str
    shape: tuple
    threads: int
    seconds: float
    per_row: np.ndarray
    student_kind: str
    teacher_kind: str
    temperature: float
    scheduler: str = None
    per_row_path: str = None
    stats: dict = dataclasses.field(default_factory=dict)
    path: str = None
    same_top: np.ndarray = None
    used: np.ndarray = None
    student_nll: np.ndarray = None
    teacher_nll: np.ndarray = None

    @property
    def rows(self):
        """Number of distributions: every position of the leading axes.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> evaluate(np.zeros((4, 2, 3)), np.zeros((4, 2, 3))).rows
        8
        """
        return self.per_row.size

    @property
    def classes(self):
        """Size of the last axis.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> evaluate(np.zeros((4, 2, 3)), np.zeros((4, 2, 3))).classes
        3
        """
        return self.shape[-1]

    def per_row_stats(self):
        """Min, median and max of the per-row KL over rows that are not NaN, and the NaN count.

        Returns
        -------
        tuple
            ``(min, median, max, nan_rows)``: three floats (NaN when every
            row is NaN) and an int.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> result = evaluate(np.zeros((3, 2)), np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]))
        >>> result.per_row_stats()
        (0.0, 0.1109..., 0.3278..., 0)
        """
        in_use = self.per_row if self.used is None else self.per_row[self.used]
        finite = in_use[~np.isnan(in_use)]
        if not finite.size:
            return math.nan, math.nan, math.nan, in_use.size
        return (float(finite.min()), float(np.median(finite)), float(finite.max()),
                in_use.size - finite.size)

    @property
    def delta_p(self):
        """q(label) - p(label) per row: the change in the label's probability (None without labels).

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> result = evaluate(np.zeros((1, 2)), np.array([[0.0, 1.0]]), labels=np.array([1]))
        >>> result.delta_p
        array([-0.2310...])
        """
        if self.student_nll is None:
            return None
        return np.exp(-self.student_nll) - np.exp(-self.teacher_nll)

    def to_dict(self):
        """The result as a JSON-ready dict (no per-row array, only its statistics).

        Returns
        -------
        dict
            The fields that ``lucid-eval --json`` prints at its top level for
            the first student, and ``"students"``: this result's entry
            (:meth:`student_entry`) in a list. NaN and infinities are kept
            here; :func:`json_report` writes them as null.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> result = evaluate(np.zeros((2, 3)), np.zeros((2, 3)))
        >>> result.to_dict()["kl"], result.to_dict()["rows"]
        (0.0, 2)
        """
        low, median, high, nan_rows = self.per_row_stats()
        return {
            "kl": self.kl, "reduction": self.reduction, "rows": self.rows,
            "classes": self.classes, "shape": list(self.shape),
            "seconds": round(self.seconds, 6), "threads": self.threads,
            "student_kind": self.student_kind, "teacher_kind": self.teacher_kind,
            "temperature": self.temperature,
            "per_row_min": low, "per_row_median": median, "per_row_max": high,
            "nan_rows": nan_rows, "per_row_file": self.per_row_path,
            "scheduler": self.scheduler, "students": [self.student_entry()],
        }

    def student_entry(self):
        """This student's object in the JSON's ``"students"`` list.

        Returns
        -------
        dict
            ``path``, ``kl`` (the value of the reduction), ``rows`` (every
            row, ignored ones included) and ``stats``.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> entry = evaluate(np.zeros((2, 3)), np.zeros((2, 3))).student_entry()
        >>> entry["path"], entry["rows"], entry["stats"]["same_top"]
        ('student0', 2, 1.0)
        """
        return {"path": self.path, "kl": self.kl, "rows": self.rows, "stats": dict(self.stats)}

    def summary(self):
        """The human report: the KL, the data, then llama.cpp's statistics.

        Returns
        -------
        str
            What ``lucid-eval`` prints without ``--json``.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> print(evaluate(np.zeros((2, 3)), np.zeros((2, 3))).summary())
        KL(teacher || student) = 0  (batchmean: mean KL per row)
        rows: 2 x 3 classes  (student logits, teacher logits, temperature 1)
        per-row KL: min 0, median 0, max 0
        ...
        Mean    KLD                     0.000000 ± 0.000000
        ...
        ... s on ... of this machine
        """
        from lucid.eval.table import format_report
        return format_report([self])


def json_report(results):
    """The ``--json`` object of one run: strict JSON text (NaN and infinities as null).

    Today's top-level keys describe the first student; ``"students"`` lists
    every student's entry in order.
    """
    report = results[0].to_dict()
    report["students"] = [result.student_entry() for result in results]
    return json.dumps(_strict(report), allow_nan=False)


def _strict(value):
    """``value`` with every non-finite float replaced by None, for strict JSON."""
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def per_row_stats_arrays(results):
    """The arrays of ``--per-row-stats``: per-row values with a leading student axis."""
    arrays = {"kl": np.stack([r.per_row for r in results]),
              "same_top": np.stack([r.same_top for r in results])}
    if results[0].student_nll is not None:
        arrays["nll_student"] = np.stack([r.student_nll for r in results])
        arrays["nll_teacher"] = results[0].teacher_nll
        arrays["delta_p"] = np.stack([r.delta_p for r in results])
    return arrays


def write_npy_atomically(path, array):
    """Write ``array`` as ``.npy`` at ``path`` whole or not at all.

    A regular file (or a new one) is written to a temporary file of its own,
    unique to this call, in the same directory, which replaces it in one
    rename once complete; on any error it is removed, so no partial file is
    ever left at ``path``. A symbolic link is followed: the file it points to
    is replaced, the link kept. An existing file that is not regular (a FIFO,
    a device such as ``/dev/null``) is written into directly, because
    replacing it would destroy the node.
    """
    # Into a FIFO through a plain writer: numpy's fast path asks the file for its position.
    write_atomically(path, lambda f: np.lib.format.write_array(f, array, allow_pickle=False),
                     wrap_special=_Writer)


def write_npz_atomically(path, arrays):
    """Write the dict ``arrays`` as an uncompressed ``.npz`` at ``path``, as
    :func:`write_npy_atomically` writes an array."""
    write_atomically(path, lambda f: np.savez(f, **arrays))


def write_atomically(path, write, wrap_special=None):
    """Call ``write(file)`` to make ``path``, whole or not at all (see :func:`write_npy_atomically`).

    A FIFO or a device is written into directly: through ``wrap_special(file)``
    when given, else from a buffer in memory, for writers that seek (a zip
    archive, a PNG), which such a file cannot do.
    """
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "wb") as f:
            if wrap_special is not None:
                write(wrap_special(f))
            else:
                buffer = io.BytesIO()
                write(buffer)
                f.write(buffer.getbuffer())
        return
    target = os.path.realpath(path)
    temporary, f = _new_temporary(*os.path.split(target))
    try:
        with f:
            write(f)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _new_temporary(directory, name):
    """A new file next to ``name``, open for writing, that no other writer shares.

    Exclusive creation ("x") makes the name unique even between threads of
    one process or processes with equal PIDs; unlike ``tempfile.mkstemp``'s
    0600, the file gets the permissions a plain ``open`` would give.
    """
    while True:
        temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            return temporary, open(temporary, "xb")
        except FileExistsError:
            continue


class _Writer:
    """Only ``write``: numpy then writes the array in chunks, without seeking."""

    def __init__(self, f):
        self.write = f.write


class _NoBar:
    def update(self, n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


def progress_bar(show, total):
    """A tqdm bar on stderr when asked for and tqdm is installed; otherwise nothing."""
    if not show:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="row", desc="lucid.eval", file=sys.stderr, leave=False)
