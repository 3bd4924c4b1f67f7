"""``kl_div_per_row``: the KL divergence of each distribution of a batch, from any input kind.

Evaluation jobs compare a teacher's and a student's output distributions one row
at a time, from logits, log-probabilities or probabilities. This module checks
the arguments and hands the arrays to the row kernel of ``lucid._ext``, which
reads each input once and normalises logits on the fly, without full-size
temporaries: ``kl_div_per_row`` asks it for the KL alone, ``compare_rows`` for
everything an evaluation report needs, for several students at once.
"""
import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

import lucid
from lucid._ext import rowwise

KINDS = rowwise.KINDS


def kl_div_per_row(student, teacher, *, student_kind="logits", teacher_kind="logits",
                   temperature=1.0, out=None):
    r"""KL(teacher || student) of every distribution, over the last axis.

    Parameters
    ----------
    student : Tensor or array_like, shape (..., C)
        The student's outputs over ``C`` classes, as ``student_kind`` says.
        Arrays of any real dtype and layout are read in place (memory maps
        included).
    teacher : Tensor or array_like, same shape as ``student``
        The teacher's outputs, as ``teacher_kind`` says.
    student_kind, teacher_kind : {"logits", "log-probs", "probs"}, default "logits"
        What the values are: unnormalised logits (normalised here with a
        softmax over the last axis), log-probabilities or probabilities.
    temperature : float, default 1.0
        Logits are divided by it before the softmax (knowledge distillation's
        softening); log-probabilities and probabilities are taken as they are.
    out : numpy.ndarray, optional
        A C-contiguous float64 array of shape ``student.shape[:-1]`` to write
        the result into.

    Returns
    -------
    numpy.ndarray
        float64, shape ``student.shape[:-1]``: for every row,
        :math:`\sum_c p_c (\log p_c - \log q_c)` with ``p`` the teacher's and
        ``q`` the student's distribution. ``out`` when it was given.

    Raises
    ------
    ValueError
        If a kind is not one of the three names, the temperature is not a
        finite positive number, the inputs have no dimensions or different
        shapes, or ``out`` does not fit.
    TypeError
        If an input is not numeric (bool and complex included).

    See Also
    --------
    lucid.nn.functional.kl_div : The per-element convention this follows.
    lucid.metrics.KLDivergence : Reduces over batches instead.

    Notes
    -----
    With ``student_kind="log-probs"`` and ``teacher_kind="probs"`` the result
    is ``kl_div(student, teacher, reduction="none").sum(-1)``; with a teacher
    in log-probabilities, the same with ``log_target=True``. Special values
    follow ``kl_div``: a class with :math:`p = 0` adds 0, a class with
    :math:`p > 0` and :math:`q = 0` makes the row :math:`+\infty`, a negative
    probability or a NaN makes it NaN, and so does a row of logits holding
    NaN, :math:`+\infty`, or only :math:`-\infty`.

    Each input is read once, a block of columns at a time, with an online
    normaliser in float64 (:doc:`/performance` gives the method). For float32,
    float16 and bfloat16-widened inputs every row is within
    :math:`10^{-9} + 10^{-7}\,\mathrm{KL}` of the exact value on the same
    input values, for float64 inputs within :math:`10^{-12}` relative (above
    about :math:`10^{-14}`); identical rows give exactly 0, and rows of
    logits are never negative. A row is computed on one thread in a fixed
    order, so its value does not depend on the thread count or on the other
    rows of the call. Nothing input-sized is copied, for any real dtype or
    layout.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.metrics import kl_div_per_row
    >>> teacher = np.array([[2.0, 0.5, 0.1], [0.0, 0.0, 0.0]])
    >>> student = np.array([[1.5, 0.7, 0.2], [0.0, 0.0, 0.0]])
    >>> kl_div_per_row(student, teacher)
    array([0.0474..., 0.        ])

    Probabilities for the teacher, and a softer distillation temperature:

    >>> p = np.array([[0.8, 0.15, 0.05]])
    >>> kl_div_per_row(np.array([[2.0, 0.5, 0.1]]), p, teacher_kind="probs")
    array([0.0239...])
    >>> kl_div_per_row(student, teacher, temperature=4.0)
    array([0.0032..., 0.        ])
    """
    check_kind("student_kind", student_kind)
    check_kind("teacher_kind", teacher_kind)
    check_temperature(temperature)
    student = _as_numeric_array(student, "student")
    teacher = _as_numeric_array(teacher, "teacher")
    if student.shape != teacher.shape:
        raise ValueError(f"kl_div_per_row: student of shape {student.shape} and teacher of "
                         f"shape {teacher.shape} differ; they must have one shape (..., C)")
    if student.ndim == 0:
        raise ValueError("kl_div_per_row: inputs need at least one dimension (the classes), "
                         "got 0-d arrays")
    out = _check_out(out, student.shape[:-1])
    return rowwise.kl_div_rows(student, teacher, student_kind, teacher_kind,
                               float(temperature), out)


class RowComparison(NamedTuple):
    """What :func:`compare_rows` gives for every row.

    Attributes
    ----------
    kl : numpy.ndarray
        float64 KL(teacher || student) per row (and per student).
    student_argmax, teacher_argmax : numpy.ndarray
        int64 index of each side's most likely class.
    student_label_logprob, teacher_label_logprob : numpy.ndarray or None
        float64 log-probability of the row's label, NaN for ignored rows;
        None without labels.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.metrics import compare_rows
    >>> compare_rows(np.zeros((1, 2)), np.zeros((1, 2))).kl
    array([0.])
    """

    kl: np.ndarray
    student_argmax: np.ndarray
    teacher_argmax: np.ndarray
    student_label_logprob: Optional[np.ndarray]
    teacher_label_logprob: Optional[np.ndarray]


def compare_rows(students, teacher, *, student_kind="logits", teacher_kind="logits",
                 temperature=1.0, labels=None, ignore_index=-100):
    r"""Compare one or several students with a teacher, row by row.

    Everything an evaluation report needs per row, from one reading of the
    inputs: KL(teacher || student), each side's most likely class and, given
    the observed class of every row, each side's log-probability of it.

    Parameters
    ----------
    students : array_like of shape (..., C), or a list of them
        One student, or several of the teacher's shape (the teacher's row
        work is shared between them).
    teacher : array_like, shape (..., C)
        The teacher's outputs.
    student_kind, teacher_kind : {"logits", "log-probs", "probs"}, default "logits"
        What the values are, as for :func:`kl_div_per_row`.
    temperature : float, default 1.0
        Logits are divided by it before the softmax.
    labels : array_like of int, shape (...), optional
        The observed class of every row (e.g. the next token).
    ignore_index : int, default -100
        A label value that marks a row without a label (its label
        log-probabilities are NaN).

    Returns
    -------
    RowComparison
        A named tuple of arrays of the row shape ``teacher.shape[:-1]``, with
        a leading axis of one entry per student when ``students`` is a list:
        ``kl`` (float64), ``student_argmax`` and ``teacher_argmax`` (int64,
        numpy's argmax: the first of equal maxima), ``student_label_logprob``
        and ``teacher_label_logprob`` (float64, None without ``labels``).

    Raises
    ------
    ValueError
        For a bad kind, temperature or shape, or a label outside ``[0, C)``
        that is not ``ignore_index`` (naming the first such row).
    TypeError
        If an input is not numeric, or the labels are not integers.

    See Also
    --------
    kl_div_per_row : The KL alone.

    Notes
    -----
    One kernel call reads every input once and computes all outputs of a row
    together; the teacher's exponentials are computed once per row and shared
    by all students. The KL follows :func:`kl_div_per_row` (its accuracy and
    special values), and a student's results do not depend on the other
    students of the call. The log-probabilities are those of the
    distributions the KL compares (after the temperature), from the same
    normaliser. The argmax is taken on the values as given (the argmax of
    logits is the argmax of their softmax at any temperature); a row holding
    NaN gives the index of its first NaN, as ``numpy.argmax``.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.metrics import compare_rows
    >>> teacher = np.array([[2.0, 0.5, 0.1], [0.0, 1.0, 0.0]])
    >>> student = np.array([[1.5, 0.7, 0.2], [1.0, 0.0, 0.0]])
    >>> result = compare_rows(student, teacher, labels=np.array([0, -100]))
    >>> result.kl
    array([0.0474..., 0.3641...])
    >>> result.student_argmax, result.teacher_argmax
    (array([0, 0]), array([0, 1]))
    >>> result.student_label_logprob
    array([-0.5434...,        nan])
    """
    check_kind("student_kind", student_kind)
    check_kind("teacher_kind", teacher_kind)
    check_temperature(temperature)
    several = isinstance(students, (list, tuple))
    student_list = list(students) if several else [students]
    if not student_list:
        raise ValueError("compare_rows: students is an empty list; give at least one student")
    teacher = _as_numeric_array(teacher, "teacher")
    if teacher.ndim == 0:
        raise ValueError("compare_rows: inputs need at least one dimension (the classes), "
                         "got a 0-d teacher")
    student_list = [_as_numeric_array(s, f"students[{i}]" if several else "student")
                    for i, s in enumerate(student_list)]
    for i, s in enumerate(student_list):
        if s.shape != teacher.shape:
            raise ValueError(f"compare_rows: student {i} of shape {s.shape} and teacher of "
                             f"shape {teacher.shape} differ; they must have one shape (..., C)")
    rows_shape = teacher.shape[:-1]
    label_array = None if labels is None else _check_labels(labels, rows_shape,
                                                            teacher.shape[-1], ignore_index)
    result = _compare(student_list, teacher, student_kind, teacher_kind, temperature,
                      label_array, ignore_index)
    if not several:
        result = result._replace(kl=result.kl[0], student_argmax=result.student_argmax[0],
                                 student_label_logprob=None if label_array is None
                                 else result.student_label_logprob[0])
    return result


def _compare(students, teacher, student_kind, teacher_kind, temperature, labels, ignore_index):
    """One kernel call for every student; outputs with a leading axis of students."""
    rows_shape = teacher.shape[:-1]
    per_student = (len(students),) + rows_shape
    outputs = dict(kl=np.empty(per_student), student_argmax=np.empty(per_student, np.int64),
                   teacher_argmax=np.empty(rows_shape, np.int64))
    if labels is not None:
        outputs.update(student_logprob=np.empty(per_student), teacher_logprob=np.empty(rows_shape),
                       labels=np.ascontiguousarray(labels, dtype=np.int64).reshape(-1))
    rowwise.compare_rows(students, teacher, student_kind, teacher_kind, float(temperature),
                         ignore_index=ignore_index, **outputs)
    return RowComparison(outputs["kl"], outputs["student_argmax"], outputs["teacher_argmax"],
                         outputs.get("student_logprob"), outputs.get("teacher_logprob"))


def _check_labels(labels, rows_shape, classes, ignore_index):
    labels = np.asarray(labels.numpy() if isinstance(labels, lucid.Tensor) else labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"compare_rows: labels must be integers, got dtype {labels.dtype}")
    if labels.shape != rows_shape:
        raise ValueError(f"compare_rows: labels of shape {labels.shape} do not match the rows "
                         f"of shape {rows_shape}")
    bad = ((labels < 0) | (labels >= classes)) & (labels != ignore_index)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"compare_rows: label {int(labels[first])} of row {first} is outside "
                         f"[0, {classes}) and is not the ignore index {ignore_index}")
    return labels


def check_kind(name, kind):
    """Raise ``ValueError`` unless ``kind`` is one of :data:`KINDS`."""
    if not isinstance(kind, str) or kind not in KINDS:
        allowed = ", ".join(repr(k) for k in KINDS)
        raise ValueError(f"{name} must be one of {allowed}; got {kind!r}")


def check_temperature(temperature):
    """Raise ``ValueError`` unless ``temperature`` is a finite number > 0."""
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature <= 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def _as_numeric_array(value, name):
    # Detached: a model output that requires grad is read, never recorded.
    array = lucid.as_tensor(value, name).detach().numpy()
    if array.dtype.kind not in "fiu":
        raise TypeError(f"kl_div_per_row: {name} must hold real numbers (float or integer), "
                        f"got dtype {array.dtype}")
    return array


def _check_out(out, shape):
    if out is None:
        return np.empty(shape, dtype=np.float64)
    if (not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != shape
            or not out.flags.c_contiguous or not out.flags.writeable):
        got = (f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray)
               else type(out).__name__)
        raise ValueError(f"kl_div_per_row: out must be a writeable C-contiguous float64 array "
                         f"of shape {shape}, got {got}")
    return out
