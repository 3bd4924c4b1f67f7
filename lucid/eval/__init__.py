"""Evaluation jobs: students compared with a teacher, row by row, over files larger than memory.

``lucid-eval STUDENT [STUDENT ...] TEACHER`` (also ``python -m lucid.eval``;
see :mod:`lucid.eval.cli`) runs :func:`evaluate`, which reads ``.npy``,
``.npz`` and ``.safetensors`` inputs in chunks of rows
(:mod:`lucid.eval.sources`, :mod:`lucid.eval.safetensors`), compares every
chunk of the teacher, read once, with the same chunk of every student on this
machine's cores or on a Dask cluster (:mod:`lucid.eval.rows`,
:mod:`lucid.eval.cluster`), and reports llama.cpp's statistics
(:mod:`lucid.eval.stats`) as a table, JSON, per-row files and a plot
(:mod:`lucid.eval.table`, :mod:`lucid.eval.report`, :mod:`lucid.eval.plot`).
"""
from lucid.eval.cli import main
from lucid.eval.job import evaluate
from lucid.eval.report import EvalResult
from lucid.eval.sources import InputError

__all__ = ["evaluate", "main", "EvalResult", "InputError"]
