"""``lucid-eval`` (also ``python -m lucid.eval``): the command line around :func:`lucid.eval.evaluate`.

Every problem a user can cause, a bad option or a bad file, ends in one line
on stderr and exit status 2, the status argparse uses for usage errors; a
traceback is kept for bugs in lucid itself.
"""
import argparse
import importlib.resources
import json
import math
import sys

from lucid.eval.job import REDUCTIONS, check_output_path, evaluate
from lucid.eval.report import json_report
from lucid.eval.sources import InputError
from lucid.eval.table import format_report, rows_note
from lucid.metrics.per_row import KINDS

PROG = "lucid.eval"
DEMO_FILE = "demo.npz"

DESCRIPTION = """\
KL(teacher || student) for every row of each student and the teacher, over the
last (class) axis, and the statistics of llama.cpp's perplexity --kl-divergence
report (with --labels: perplexities and the change of the label's probability).
Inputs are .npy files (memory-mapped), .npz archives or .safetensors files of
shape (N, C) or (N, ..., C), float16, bfloat16 (safetensors), float32 or
float64, read in chunks of rows, so they may be larger than memory; the teacher
is read once for all students. Pickles, torch.save files and arrays of Python
objects are refused, never loaded."""


USAGE = """\
lucid-eval [options] STUDENT [STUDENT ...] TEACHER
       lucid-eval --demo [options]"""


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message):
        fail(f"{message} (see --help)")


def fail(message):
    """Print ``lucid.eval: error: message`` as one line on stderr and exit with status 2."""
    sys.stderr.write(f"{PROG}: error: {' '.join(str(message).split())}\n")
    raise SystemExit(2)


def _positive(kind, name):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{name} must be > 0 (and finite), got {text!r}")
        return value
    return parse


def build_parser():
    """The argument parser of ``python -m lucid.eval``."""
    parser = _OneLineParser(prog="lucid-eval", description=DESCRIPTION, usage=USAGE,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="the students' outputs, then the teacher's, one shape: .npy, "
                             ".npz or .safetensors (with --key when they hold several)")
    parser.add_argument("--demo", action="store_true",
                        help="run on the demo set shipped with lucid (no STUDENT/TEACHER)")
    parser.add_argument("--key", help="array name in .npz/.safetensors inputs (every side)")
    parser.add_argument("--student-key", help="array name in the students' files")
    parser.add_argument("--teacher-key", help="array name in the teacher's file")
    parser.add_argument("--labels", metavar="FILE",
                        help="integer class of the observed outcome of every row, shape "
                             "(N, ...): .npy, .npz or .safetensors; adds perplexities and Δp")
    parser.add_argument("--labels-key", help="array name in the labels file")
    parser.add_argument("--ignore-index", type=int, default=-100, metavar="I",
                        help="rows whose label is I are left out of every statistic "
                             "(default: -100)")
    parser.add_argument("--student-kind", choices=KINDS, default="logits",
                        help="what STUDENT holds (default: logits)")
    parser.add_argument("--teacher-kind", choices=KINDS, default="logits",
                        help="what TEACHER holds (default: logits)")
    parser.add_argument("--temperature", type=_positive(float, "temperature"), default=1.0,
                        metavar="T", help="divide logits by T before the softmax (default: 1)")
    parser.add_argument("--reduction", choices=REDUCTIONS, default="batchmean",
                        help="batchmean: mean KL per row (default); mean: per element; sum")
    parser.add_argument("--chunk-rows", type=_positive(int, "chunk-rows"), metavar="N",
                        help="rows of the first axis per chunk (default: about 8 MiB of each "
                             "file, at least 256 rows up to 32 MiB)")
    parser.add_argument("--per-row", metavar="OUT",
                        help="write the per-row KL (float64, shape N, ...) to this .npy file; "
                             "with several students an .npz keyed student0, student1, ...")
    parser.add_argument("--per-row-stats", metavar="OUT.npz",
                        help="write every row's KL, top-1 agreement and, with labels, both "
                             "NLLs and Δp (a leading axis per student) to this .npz")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="draw each student's per-row KL distribution (needs matplotlib: "
                             "pip install 'lucid[plot]')")
    parser.add_argument("--threads", type=_positive(int, "threads"), metavar="N",
                        help="threads on this machine (default: lucid's thread count)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a dask.distributed cluster, e.g. tcp://host:8786")
    parser.add_argument("--json", action="store_true",
                        help="print one strict JSON object (NaN and inf as null) instead of "
                             "the table")
    return parser


def main(argv=None):
    """Run ``lucid-eval`` (``python -m lucid.eval``) with ``argv`` (default: ``sys.argv[1:]``).

    Parameters
    ----------
    argv : list of str, optional
        The command-line arguments, without the program name.

    Returns
    -------
    int
        0 on success. Bad options and inputs exit with status 2 instead
        (``SystemExit``), after one line on stderr.

    Raises
    ------
    SystemExit
        With status 2 for a bad option or input, 0 after ``--help``, 130
        when interrupted (Ctrl-C).

    Notes
    -----
    The report goes to stdout (a table with a column per student, or one
    strict JSON object with ``--json``); errors, the progress bar and the
    note on fewer than 100 rows go to stderr. A missing or unreadable file,
    a pickle, an array of Python objects, a non-numeric dtype, fewer than
    two dimensions, different shapes, a bad label, a bad option value or an
    unreachable scheduler each end in one ``lucid.eval: error: ...`` line
    and status 2; a traceback means a bug in lucid.

    Examples
    --------
    >>> from lucid.eval import main
    >>> main(["--demo"])
    KL(teacher || student) = 0.29374 (batchmean: mean KL per row)
    rows: 1,024 x 100 classes (student logits, teacher logits, temperature 1)
    labels: 1,000 rows in use, 24 ignored
    per-row KL: min ..., median ..., max ...
    ...
    Same top p...96.600 ± 0.573 %
    ... s on ... thread... of this machine
    0
    """
    args = build_parser().parse_args(argv)
    inputs = _inputs(args)
    draw = _plotter(args.plot, inputs)
    try:
        results = evaluate(**inputs, per_row_path=args.per_row,
                           per_row_stats_path=args.per_row_stats,
                           student_kind=args.student_kind, teacher_kind=args.teacher_kind,
                           temperature=args.temperature, reduction=args.reduction,
                           ignore_index=args.ignore_index, chunk_rows=args.chunk_rows,
                           threads=args.threads, scheduler=args.scheduler)
        if draw is not None:
            draw(results)
    except InputError as error:
        fail(error)
    except OSError as error:  # e.g. an output file's disk filled up
        fail(f"{error.filename or 'output'}: {error.strerror or error}")
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        raise SystemExit(130) from None
    print(json_report(results) if args.json else format_report(results))
    note = rows_note(results)
    if note:
        sys.stderr.write(f"{PROG}: note: {note}\n")
    return 0


def _plotter(path, inputs):
    """The function that draws ``--plot``, checked before any work (None without it)."""
    if path is None:
        return None
    files = [*inputs["student"], inputs["teacher"], inputs.get("labels")]
    check_output_path(path, [f for f in files if f is not None], "plot")
    from lucid.eval.plot import plot_kl_distribution, require_matplotlib
    try:
        require_matplotlib()
    except ImportError:
        fail("--plot needs matplotlib, which is not installed: pip install 'lucid[plot]'")
    return lambda results: plot_kl_distribution(results, path)


def _inputs(args):
    """The files and keys to evaluate, as keyword arguments of :func:`evaluate`."""
    labels = dict(labels=args.labels, labels_key=args.labels_key)
    if args.labels_key and not args.labels:
        fail("--labels-key names an array of the --labels file; give --labels too")
    if args.demo:
        if args.files:
            fail("--demo runs on the shipped demo set; it takes no STUDENT or TEACHER")
        if args.key or args.student_key or args.teacher_key or args.labels:
            fail("--demo chooses its own arrays; it takes no --key nor --labels")
        demo = str(importlib.resources.files("lucid.eval") / "data" / DEMO_FILE)
        return dict(student=[demo], teacher=demo, student_key="student", teacher_key="teacher",
                    labels=demo, labels_key="labels")
    if len(args.files) < 2:
        fail("STUDENT and TEACHER are required (or --demo)")
    return dict(student=args.files[:-1], teacher=args.files[-1],
                student_key=args.student_key or args.key,
                teacher_key=args.teacher_key or args.key, **labels)
