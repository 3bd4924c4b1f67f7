"""Make lucid/eval/data/demo.npz, the demo set of ``python -m lucid.eval --demo``.

A synthetic distillation: a teacher and a smaller student classify 1024
inputs into 100 classes. The teacher is confident (its logit for the true
class stands about 6 above the rest); the student learned from it, so its
logits follow the teacher's, shrunk towards 0 and with its own errors. Both are
stored as float32 logits under the keys ``teacher`` and ``student`` of a
compressed archive (about 0.8 MB), deterministic for a given numpy version.
The key ``labels`` holds every input's true class (int64), the outcome the
perplexities are measured on; the last 24 rows stand for padding and are
labelled -100, the ignore index, so the report leaves them out. The key
``weak_student`` holds a second, weaker student (shrunk further, noisier), for
comparing several students with one teacher. About 1.1 MB in all.

Run from the repository root::

    python scripts/make_demo_data.py
"""
import pathlib

import numpy as np

ROWS, CLASSES, SEED = 1024, 100, 20261128
PADDING_ROWS, IGNORE_INDEX = 24, -100
OUT = pathlib.Path(__file__).resolve().parents[1] / "lucid" / "eval" / "data" / "demo.npz"


def demo_arrays(rows=ROWS, classes=CLASSES, seed=SEED):
    """Float32 logits ``teacher, student`` of shape ``(rows, classes)``, int64 ``labels``
    of shape ``(rows,)`` and a float32 ``weak_student``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=rows)
    teacher = rng.standard_normal((rows, classes))
    teacher[np.arange(rows), labels] += 6.0
    # Distillation leaves the student less sure (0.8) and wrong in its own way.
    student = 0.8 * teacher + 0.7 * rng.standard_normal((rows, classes))
    labels[rows - PADDING_ROWS:] = IGNORE_INDEX
    # Drawn after the others, so the first student and the teacher stay as they were.
    weak_student = 0.6 * teacher + 1.0 * rng.standard_normal((rows, classes))
    return (teacher.astype(np.float32), student.astype(np.float32), labels.astype(np.int64),
            weak_student.astype(np.float32))


def main():
    teacher, student, labels, weak_student = demo_arrays()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, teacher=teacher, student=student, labels=labels,
                        weak_student=weak_student)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): teacher, student and "
          f"weak_student logits of shape {teacher.shape}, labels of shape {labels.shape}")


if __name__ == "__main__":
    main()
