"""Metrics for evaluation jobs: the KL divergence over streams of batches and per row.

``KLDivergence`` accumulates ``kl_div`` over batches (and over processes, by
merging); ``kl_div_per_row`` gives KL(teacher || student) for every distribution
of a batch, from logits, log-probabilities or probabilities.
"""
from lucid.metrics.kl_divergence import KLDivergence
from lucid.metrics.per_row import KINDS, RowComparison, compare_rows, kl_div_per_row

__all__ = ["KLDivergence", "kl_div_per_row", "compare_rows", "RowComparison", "KINDS"]
