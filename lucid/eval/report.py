"""What an evaluation job shows and hands back: progress, the result, its summary and JSON,
the per-row file."""
import contextlib
import dataclasses
import math
import os
import sys
import uuid

import numpy as np

_REDUCTION_MEANING = {
    "batchmean": "mean KL per row",
    "mean": "mean per element: KL per row / classes",
    "sum": "KL summed over rows",
}


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
        finite = self.per_row[~np.isnan(self.per_row)]
        if not finite.size:
            return math.nan, math.nan, math.nan, self.rows
        return (float(finite.min()), float(np.median(finite)), float(finite.max()),
                self.rows - finite.size)

    def to_dict(self):
        """The result as a JSON-ready dict (no per-row array, only its statistics).

        Returns
        -------
        dict
            The fields that ``python -m lucid.eval --json`` prints.

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
            "scheduler": self.scheduler,
        }

    def summary(self):
        """A few lines for a person: the KL, the data, the per-row spread, the run.

        Returns
        -------
        str
            What ``python -m lucid.eval`` prints without ``--json``.

        Examples
        --------
        >>> import numpy as np
        >>> from lucid.eval import evaluate
        >>> print(evaluate(np.zeros((2, 3)), np.zeros((2, 3))).summary())
        KL(teacher || student) = 0  (batchmean: mean KL per row)
        rows: 2 x 3 classes  (student logits, teacher logits, temperature 1)
        per-row KL: min 0, median 0, max 0
        ... s on ... of this machine
        """
        low, median, high, nan_rows = self.per_row_stats()
        where = f"a Dask cluster at {self.scheduler}" if self.scheduler else "this machine"
        lines = [
            f"KL(teacher || student) = {self.kl:.6g}  ({self.reduction}: "
            f"{_REDUCTION_MEANING[self.reduction]})",
            f"rows: {self.rows:,} x {self.classes:,} classes  (student {self.student_kind}, "
            f"teacher {self.teacher_kind}, temperature {self.temperature:g})",
            f"per-row KL: min {low:.6g}, median {median:.6g}, max {high:.6g}",
        ]
        if nan_rows:
            lines.append(f"{nan_rows:,} rows are NaN (invalid inputs) and left out of the "
                         "min/median/max")
        if self.per_row_path:
            lines.append(f"per-row KL written to {self.per_row_path}")
        plural = "" if self.threads == 1 else "s"
        lines.append(f"{self.seconds:.3f} s on {self.threads} thread{plural} of {where}")
        return "\n".join(lines)


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
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "wb") as f:
            # Through a plain writer: numpy's fast path asks a FIFO for its position.
            np.lib.format.write_array(_Writer(f), array, allow_pickle=False)
        return
    target = os.path.realpath(path)
    temporary, f = _new_temporary(*os.path.split(target))
    try:
        with f:
            np.lib.format.write_array(f, array, allow_pickle=False)
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
