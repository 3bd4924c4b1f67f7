"""``--plot``: each student's per-row KL as a distribution, for a person to look at.

A cumulative distribution over a log axis is the usual picture of a KL report:
the mean hides whether a student is a little off everywhere or far off on a few
rows, and the curve shows both (its tail is the 99th and 99.9th percentiles of
the table). Needs matplotlib (``pip install "lucid[plot]"``); the command
checks that it imports before any work.
"""
import numpy as np

from lucid.eval.report import write_atomically
from lucid.eval.table import column_names


def require_matplotlib():
    """Import matplotlib's ``Figure`` (no pyplot, no global backend); ImportError without it."""
    from matplotlib.figure import Figure
    return Figure


def plot_kl_distribution(results, path):
    """Write a PNG of the per-row KL's cumulative distribution, one line per student.

    Rows left out of the statistics (ignored labels) are left out here too, and
    so are NaN rows; rows of KL exactly 0, which a log axis cannot show, are
    counted in the curve's starting height.
    """
    # A bare Figure draws with the Agg canvas: no display, no pyplot state.
    figure = require_matplotlib()(figsize=(7.5, 4.5), dpi=120)
    axes = figure.add_subplot()
    lowest = np.inf
    for result, name in zip(results, column_names([r.path for r in results])):
        values = result.per_row if result.used is None else result.per_row[result.used]
        values = np.sort(values[~np.isnan(values)].ravel())
        share = np.arange(1, values.size + 1) / max(values.size, 1)
        positive = values > 0
        if positive.any():
            lowest = min(lowest, values[positive][0])
        axes.step(values[positive], share[positive], where="post",
                  label=f"{name}  (mean {result.stats['kld_mean']:.4g})")
    axes.set_xscale("log")
    if np.isfinite(lowest):
        axes.set_xlim(left=lowest / 1.5)
    axes.set_ylim(0, 1)
    axes.set_xlabel("KL(teacher || student) of a row (nats, log scale)")
    axes.set_ylabel("share of rows with a KL up to x")
    axes.set_title(f"Per-row KL, {results[0].stats['rows_used']:,} rows")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    write_atomically(path, lambda f: figure.savefig(f, format="png"))
