"""The per-row work of an evaluation job: one chunk of rows compared, and where the answers go.

:func:`compare_chunk` is what runs on every chunk, on this machine or on a Dask
worker: the teacher's chunk, read once, is compared with every student's chunk
by :func:`lucid.metrics.compare_rows`. :class:`RowBuffers` holds what the
report needs of every row (8 to 25 bytes a row and student), so the statistics
are computed once, over all rows, whatever the chunking.
"""
import numpy as np

from lucid.eval.sources import InputError
from lucid.metrics.per_row import compare_rows


def check_labels(labels, classes, ignore_index, first_row):
    """Refuse a label outside ``[0, classes)`` that is not ``ignore_index``, naming its row.

    ``first_row`` is the index of the chunk's first row in the whole file, so the
    message names the row a user can find.
    """
    bad = ((labels < 0) | (labels >= classes)) & (labels != ignore_index)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        row = (first_row + where[0], *where[1:])
        shown = row[0] if len(row) == 1 else row
        raise InputError(f"labels: label {int(labels[where])} of row {shown} is outside "
                         f"[0, {classes}) and is not the ignore index {ignore_index}")


def compare_chunk(students, teacher, labels, options, first_row):
    """Compare the chunks of every student with the teacher's chunk (read once).

    Returns ``(comparison, used)``: a :class:`lucid.metrics.RowComparison`
    with a leading student axis, and which rows are in use (their label is not
    the ignore index), or None without labels.
    """
    used = None
    if labels is not None:
        labels = np.asarray(labels)
        check_labels(labels, teacher.shape[-1], options.ignore_index, first_row)
        used = labels != options.ignore_index
    comparison = compare_rows(list(students), teacher, student_kind=options.student_kind,
                              teacher_kind=options.teacher_kind, temperature=options.temperature,
                              labels=labels, ignore_index=options.ignore_index)
    return comparison, used


class RowBuffers:
    """Every row's KL, top-1 agreement and label log-probabilities, per student."""

    def __init__(self, students, rows_shape, with_labels):
        self.kl = np.empty((students, *rows_shape), dtype=np.float64)
        self.same_top = np.empty((students, *rows_shape), dtype=bool)
        # Without labels every row is in use: ``used`` stays None.
        self.student_logprob = self.teacher_logprob = self.used = None
        if with_labels:
            self.student_logprob = np.empty((students, *rows_shape), dtype=np.float64)
            self.teacher_logprob = np.empty(rows_shape, dtype=np.float64)
            self.used = np.empty(rows_shape, dtype=bool)

    def store(self, start, stop, comparison, used=None):
        """Keep a chunk's comparison (and which of its rows are in use) as rows ``start:stop``."""
        self.kl[:, start:stop] = comparison.kl
        self.same_top[:, start:stop] = comparison.student_argmax == comparison.teacher_argmax
        if self.used is not None:
            self.student_logprob[:, start:stop] = comparison.student_label_logprob
            self.teacher_logprob[start:stop] = comparison.teacher_label_logprob
            self.used[start:stop] = used
