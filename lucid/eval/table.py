"""The human report of an evaluation job: a few lines on the run, then a table, a column per student.

The rows and their wording follow llama.cpp's ``perplexity --kl-divergence``
output, so its readers find their numbers where they expect them: perplexity
statistics (with labels), KL divergence statistics, token probability
statistics, in percent where llama.cpp prints percent. "Q" there is the
student here, "base" the teacher.
"""
import os

from lucid.eval.stats import DP_PERCENTILES, KLD_PERCENTILES

REDUCTION_MEANING = {
    "batchmean": "mean KL per row",
    "mean": "mean per element: KL per row / classes",
    "sum": "KL summed over rows",
}
LABEL_WIDTH = 39


def _plain(key):
    return lambda stats: f"{stats[key]:.6f}"


def _plus_minus(key, scale=1.0, digits=6, unit=""):
    # ``kld_mean`` and ``dp_mean`` have ``kld_se`` and ``dp_se``; any other ``x`` has ``x_se``.
    error_key = key.removesuffix("_mean") + "_se"
    return lambda stats: (f"{scale * stats[key]:.{digits}f} ± "
                          f"{scale * stats[error_key]:.{digits}f}{unit}")


def _percent(key):
    return lambda stats: f"{100 * stats[key]:.3f}%"


def _percentile_name(name):
    percent = dict(DP_PERCENTILES)[name]
    return "Median " if name == "median" else f"{percent:4.1f}%".ljust(7)


PERPLEXITY_ROWS = [
    ("Mean PPL(student)", _plus_minus("ppl_student")),
    ("Mean PPL(teacher)", _plus_minus("ppl_teacher")),
    ("Cor(ln PPL(student), ln PPL(teacher))", lambda s: f"{100 * s['ppl_cor']:.2f}%"),
    ("Mean ln(PPL(student)/PPL(teacher))", _plus_minus("ln_ppl_ratio")),
    ("Mean PPL(student)/PPL(teacher)", _plus_minus("ppl_ratio")),
    ("Mean PPL(student)-PPL(teacher)", _plus_minus("ppl_diff")),
]
KLD_ROWS = ([("Mean    KLD", _plus_minus("kld_mean")),
             ("Maximum KLD", _plain("kld_max"))]
            + [(f"{_percentile_name(name)} KLD", _plain(f"kld_{name}"))
               for name, _ in KLD_PERCENTILES]
            + [("Minimum KLD", _plain("kld_min"))])
DELTA_P_ROWS = ([("Mean    Δp", _plus_minus("dp_mean", 100, 3, " %")),
                 ("Maximum Δp", _percent("dp_max"))]
                + [(f"{_percentile_name(name)} Δp", _percent(f"dp_{name}"))
                   for name, _ in DP_PERCENTILES]
                + [("Minimum Δp", _percent("dp_min")),
                   ("RMS Δp", _plus_minus("dp_rms", 100, 3, " %"))])
SAME_TOP_ROW = ("Same top p", _plus_minus("same_top", 100, 3, " %"))


def format_report(results):
    """The report of ``results`` (one per student, same run) as text for a person.

    The first student's summary lines keep their form across versions: the
    reduced KL, the data, the per-row spread; the table follows.
    """
    first = results[0]
    meaning = f"{first.reduction}: {REDUCTION_MEANING[first.reduction]}"
    if len(results) == 1:
        lines = [f"KL(teacher || student) = {first.kl:.6g}  ({meaning})"]
    else:
        values = ", ".join(f"{r.kl:.6g}" for r in results)
        lines = [f"KL(teacher || student) per student = {values}  ({meaning})"]
    lines.append(f"rows: {first.rows:,} x {first.classes:,} classes  (student "
                 f"{first.student_kind}, teacher {first.teacher_kind}, temperature "
                 f"{first.temperature:g})")
    if first.used is not None:
        lines.append(f"labels: {first.stats['rows_used']:,} rows in use, "
                     f"{first.stats['rows_ignored']:,} ignored")
    if len(results) == 1:
        low, median, high, nan_rows = first.per_row_stats()
        lines.append(f"per-row KL: min {low:.6g}, median {median:.6g}, max {high:.6g}")
        if nan_rows:
            lines.append(f"{nan_rows:,} rows are NaN (invalid inputs) and left out of the "
                         "min/median/max")
    if first.per_row_path:
        lines.append(f"per-row KL written to {first.per_row_path}")
    lines += _table(results)
    where = f"a Dask cluster at {first.scheduler}" if first.scheduler else "this machine"
    plural = "" if first.threads == 1 else "s"
    lines.append(f"{first.seconds:.3f} s on {first.threads} thread{plural} of {where}")
    return "\n".join(lines)


def _table(results):
    names = column_names([r.path for r in results])
    widths = [max(len(name), 24) for name in names]
    lines = ["", " " * LABEL_WIDTH + "  ".join(n.rjust(w) for n, w in zip(names, widths))]
    sections = []
    if results[0].used is not None:
        sections.append(("Perplexity statistics", PERPLEXITY_ROWS))
    sections.append(("KL divergence statistics", KLD_ROWS))
    token_rows = (DELTA_P_ROWS if results[0].used is not None else []) + [SAME_TOP_ROW]
    sections.append(("Token probability statistics", token_rows))
    for title, rows in sections:
        lines.append(f"====== {title} ======")
        for label, show in rows:
            cells = [show(r.stats).rjust(w) for r, w in zip(results, widths)]
            lines.append(label.ljust(LABEL_WIDTH) + "  ".join(cells))
        lines.append("")
    return lines


def column_names(paths):
    """Students' file names, or whole paths where two names would look alike."""
    names = [os.path.basename(p) if p else "student" for p in paths]
    return names if len(set(names)) == len(names) else [p or "student" for p in paths]


def rows_note(results):
    """The stderr note for a report from fewer than 100 rows, or None.

    llama.cpp prints no statistics below 100 values; lucid prints them and says
    they are rough.
    """
    used = results[0].stats.get("rows_used", 0)
    if used >= 100:
        return None
    return (f"only {used} rows in use: percentiles and uncertainties from fewer than 100 rows "
            "are rough (llama.cpp prints none)")

