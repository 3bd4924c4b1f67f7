"""``kl_div_per_row``: the KL divergence of each distribution of a batch, from any input kind.

Evaluation jobs compare a teacher's and a student's output distributions one row
at a time, from logits, log-probabilities or probabilities. This module checks
the arguments and hands the arrays to the fused row kernel of ``lucid._ext``,
which normalises logits row by row without full-size temporaries.
"""
import math
import numbers

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
        float32 and float64 arrays are read in place (memory maps included).
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

    Each row is accumulated in float64 in column order on one thread, so the
    values do not depend on the thread count. float16 and integer inputs are
    converted (a copy); float32 and float64 are never copied.

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
    array = lucid.as_tensor(value, name).numpy()
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
