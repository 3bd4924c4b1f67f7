"""The report's statistics, with the definitions of llama.cpp's ``perplexity.cpp``.

People who compare a quantised, pruned or distilled model with its base read
``llama-perplexity --kl-divergence``; these are its numbers, computed in
float64 from the per-row values of the rows in use (ignored rows already left
out by the caller):

* a mean and its standard error, ``sqrt((mean(x**2) - mean(x)**2) / (n - 1))``,
  set to 0 when that variance is not positive or ``n <= 10`` (as there);
* percentiles by linear interpolation between order statistics (numpy's
  default, the same rule as llama.cpp's ``percentile``);
* a share ``s`` with the uncertainty ``sqrt(s (1 - s) / (n - 1))``;
* the covariance of two means, ``(mean(ab) - mean(a) mean(b)) / (n - 1)``, set
  to 0 when ``n < 10`` (as there), which enters the uncertainties of the ratio
  and the difference of two perplexities.

Shares and probabilities are fractions here; the human table prints percent
where llama.cpp does.
"""
import math

import numpy as np

#: The percentiles of the KL, as (key suffix, percent), in the report's order.
KLD_PERCENTILES = (("p99_9", 99.9), ("p99", 99.0), ("p95", 95.0), ("p90", 90.0),
                   ("median", 50.0), ("p10", 10.0), ("p5", 5.0), ("p1", 1.0), ("p0_1", 0.1))
#: The percentiles of the change in the label's probability, 75 and 25 included.
DP_PERCENTILES = (KLD_PERCENTILES[:4] + (("p75", 75.0),) + KLD_PERCENTILES[4:5]
                  + (("p25", 25.0),) + KLD_PERCENTILES[5:])

KLD_KEYS = (("kld_mean", "kld_se", "kld_max")
            + tuple(f"kld_{name}" for name, _ in KLD_PERCENTILES) + ("kld_min",))
LABEL_KEYS = ("ppl_student", "ppl_student_se", "ppl_teacher", "ppl_teacher_se", "ppl_cor",
              "ln_ppl_ratio", "ln_ppl_ratio_se", "ppl_ratio", "ppl_ratio_se", "ppl_diff",
              "ppl_diff_se", "dp_mean", "dp_se", "dp_max",
              *(f"dp_{name}" for name, _ in DP_PERCENTILES), "dp_min", "dp_rms", "dp_rms_se")
#: Every key of ``stats``, in the order docs/guides/evaluation.rst lists them (the label keys with labels only).
STAT_KEYS = KLD_KEYS + ("same_top", "same_top_se", "rows_used", "rows_ignored") + LABEL_KEYS


def mean_and_uncertainty(values):
    """The mean of ``values`` and its standard error, as llama.cpp computes them.

    ``values`` is a float64 array; an empty one gives ``(nan, nan)``.
    """
    count = values.size
    if count == 0:
        return math.nan, math.nan
    mean = float(np.sum(values)) / count
    variance = float(np.sum(values * values)) / count - mean * mean
    # llama.cpp reports no uncertainty from 10 values or fewer, nor from a
    # variance that cancelled to zero or below (NaN stays NaN).
    if math.isnan(variance):
        return mean, math.nan
    error = math.sqrt(variance / (count - 1)) if variance > 0 and count > 10 else 0.0
    return mean, error


def covariance_of_means(a, b):
    """llama.cpp's covariance term of two means over the same rows (0 below 10 rows)."""
    count = a.size
    if count < 10:
        return 0.0
    return (float(np.sum(a * b)) / count
            - (float(np.sum(a)) / count) * (float(np.sum(b)) / count)) / (count - 1)


def share_and_uncertainty(hits):
    """The share of True in the bool array ``hits`` and sqrt(s (1 - s) / (n - 1))."""
    count = hits.size
    if count == 0:
        return math.nan, math.nan
    share = float(np.count_nonzero(hits)) / count
    if count == 1:
        return share, math.nan
    return share, math.sqrt(share * (1.0 - share) / (count - 1))


def _spread(prefix, values, percentiles):
    """Max, the percentiles and min of ``values`` under keys ``prefix_...``."""
    if values.size == 0 or np.isnan(values).any():
        return {f"{prefix}_{name}": math.nan for name in ("max", *dict(percentiles), "min")}
    spread = {f"{prefix}_max": float(values.max())}
    at = np.percentile(values, [percent for _, percent in percentiles])
    spread.update({f"{prefix}_{name}": float(v) for (name, _), v in zip(percentiles, at)})
    spread[f"{prefix}_min"] = float(values.min())
    return spread


def kl_statistics(kl, same_top, rows_ignored):
    """The KL and top-1 statistics over the rows in use.

    Parameters
    ----------
    kl : numpy.ndarray
        float64 KL of every row in use, 1-d.
    same_top : numpy.ndarray
        bool, whether the student's and the teacher's argmax agree, per row in use.
    rows_ignored : int
        Rows left out (their label was the ignore index).

    Returns
    -------
    dict
        ``kld_mean`` ... ``kld_min``, ``same_top``, ``same_top_se``,
        ``rows_used``, ``rows_ignored``.
    """
    mean, error = mean_and_uncertainty(kl)
    stats = {"kld_mean": mean, "kld_se": error}
    stats.update(_spread("kld", kl, KLD_PERCENTILES))
    stats["same_top"], stats["same_top_se"] = share_and_uncertainty(same_top)
    stats["rows_used"], stats["rows_ignored"] = int(kl.size), int(rows_ignored)
    return stats


def label_statistics(student_nll, teacher_nll):
    """Perplexities and the change of the label's probability, over the rows in use.

    Parameters
    ----------
    student_nll, teacher_nll : numpy.ndarray
        float64 negative log-probability of each row's label under the
        student's and the teacher's distribution, 1-d, rows in use only.

    Returns
    -------
    dict
        ``ppl_student`` ... ``dp_rms_se``: Q is the student, base the teacher.
    """
    log_ppl, log_ppl_se = mean_and_uncertainty(student_nll)
    log_ppl_base, log_ppl_base_se = mean_and_uncertainty(teacher_nll)
    covariance = covariance_of_means(student_nll, teacher_nll)
    ppl, ppl_base = _exp(log_ppl), _exp(log_ppl_base)
    ppl_se, ppl_base_se = ppl * log_ppl_se, ppl_base * log_ppl_base_se
    with np.errstate(all="ignore"):
        cor = float(np.float64(covariance) / np.float64(log_ppl_se * log_ppl_base_se))
    ln_ratio = log_ppl - log_ppl_base
    ln_ratio_se = _sqrt(log_ppl_se ** 2 + log_ppl_base_se ** 2 - 2.0 * covariance)
    ratio = _exp(ln_ratio)
    diff_se = _sqrt(ppl_se ** 2 + ppl_base_se ** 2 - 2.0 * ppl * ppl_base * covariance)
    stats = {"ppl_student": ppl, "ppl_student_se": ppl_se, "ppl_teacher": ppl_base,
             "ppl_teacher_se": ppl_base_se, "ppl_cor": cor, "ln_ppl_ratio": ln_ratio,
             "ln_ppl_ratio_se": ln_ratio_se, "ppl_ratio": ratio,
             "ppl_ratio_se": ratio * ln_ratio_se, "ppl_diff": ppl - ppl_base,
             "ppl_diff_se": diff_se}
    with np.errstate(over="ignore", invalid="ignore"):
        delta_p = np.exp(-student_nll) - np.exp(-teacher_nll)
    stats["dp_mean"], stats["dp_se"] = mean_and_uncertainty(delta_p)
    stats.update(_spread("dp", delta_p, DP_PERCENTILES))
    mean_square, mean_square_se = mean_and_uncertainty(delta_p * delta_p)
    rms = _sqrt(mean_square)
    with np.errstate(all="ignore"):
        stats["dp_rms"] = rms
        stats["dp_rms_se"] = float(np.float64(0.5) / np.float64(rms) * mean_square_se)
    return stats


def _exp(value):
    """exp that gives inf, not an error, past float64's range."""
    with np.errstate(over="ignore"):
        return float(np.exp(np.float64(value)))


def _sqrt(value):
    """sqrt that gives NaN, not an error, for a negative or NaN argument."""
    return math.sqrt(value) if value >= 0 else math.nan
