"""Evaluation jobs: KL(teacher || student) per row over files larger than memory.

``python -m lucid.eval STUDENT TEACHER`` (see :mod:`lucid.eval.cli`) runs
:func:`evaluate`, which reads ``.npy``/``.npz`` inputs in chunks of rows
(:mod:`lucid.eval.sources`), runs lucid's fused row kernel on every chunk on
this machine's cores or on a Dask cluster (:mod:`lucid.eval.cluster`), and
reports the result (:mod:`lucid.eval.report`).
"""
from lucid.eval.cli import main
from lucid.eval.job import evaluate
from lucid.eval.report import EvalResult
from lucid.eval.sources import InputError

__all__ = ["evaluate", "main", "EvalResult", "InputError"]
