"""``python -m lucid.eval``: the command line around :func:`lucid.eval.evaluate`.

Every problem a user can cause, a bad option or a bad file, ends in one line
on stderr and exit status 2, the status argparse uses for usage errors; a
traceback is kept for bugs in lucid itself.
"""
import argparse
import importlib.resources
import json
import math
import sys

from lucid.eval.job import REDUCTIONS, evaluate
from lucid.eval.sources import InputError
from lucid.metrics.per_row import KINDS

PROG = "lucid.eval"
DEMO_FILE = "demo.npz"

DESCRIPTION = """\
KL(teacher || student) for every row of two arrays, over the last (class) axis,
and its mean over rows. Inputs are .npy files (memory-mapped) or .npz archives
of shape (N, C) or (N, ..., C), read in chunks of rows, so they may be larger
than memory. Arrays of Python objects are refused, never unpickled."""


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
    parser = _OneLineParser(prog="lucid-eval", description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student", nargs="?", metavar="STUDENT",
                        help="the student's outputs: .npy, or .npz with --key")
    parser.add_argument("teacher", nargs="?", metavar="TEACHER",
                        help="the teacher's outputs, same shape")
    parser.add_argument("--demo", action="store_true",
                        help="run on the demo set shipped with lucid (no STUDENT/TEACHER)")
    parser.add_argument("--key", help="array name in .npz inputs (both sides)")
    parser.add_argument("--student-key", help="array name in the student's .npz")
    parser.add_argument("--teacher-key", help="array name in the teacher's .npz")
    parser.add_argument("--student-kind", choices=KINDS, default="logits",
                        help="what STUDENT holds (default: logits)")
    parser.add_argument("--teacher-kind", choices=KINDS, default="logits",
                        help="what TEACHER holds (default: logits)")
    parser.add_argument("--temperature", type=_positive(float, "temperature"), default=1.0,
                        metavar="T", help="divide logits by T before the softmax (default: 1)")
    parser.add_argument("--reduction", choices=REDUCTIONS, default="batchmean",
                        help="batchmean: mean KL per row (default); mean: per element; sum")
    parser.add_argument("--chunk-rows", type=_positive(int, "chunk-rows"), metavar="N",
                        help="rows of the first axis per chunk (default: about 8 MiB)")
    parser.add_argument("--per-row", metavar="OUT.npy",
                        help="write the per-row KL (float64, shape N, ...) to this file")
    parser.add_argument("--threads", type=_positive(int, "threads"), metavar="N",
                        help="threads on this machine (default: lucid's thread count)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a dask.distributed cluster, e.g. tcp://host:8786")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of a summary")
    return parser


def main(argv=None):
    """Run ``python -m lucid.eval`` with ``argv`` (default: ``sys.argv[1:]``).

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
    The result goes to stdout (a summary, or one JSON object with
    ``--json``); errors and the progress bar go to stderr. A missing or
    unreadable file, an array of Python objects, a non-numeric dtype, fewer
    than two dimensions, different shapes, a bad option value or an
    unreachable scheduler each end in one ``lucid.eval: error: ...`` line
    and status 2; a traceback means a bug in lucid.

    Examples
    --------
    >>> from lucid.eval import main
    >>> main(["--demo"])
    KL(teacher || student) = 0.292776 (batchmean: mean KL per row)
    rows: 1,024 x 100 classes (student logits, teacher logits, temperature 1)
    per-row KL: min ..., median ..., max ...
    ... s on ... thread... of this machine
    0
    """
    args = build_parser().parse_args(argv)
    inputs = _inputs(args)
    try:
        result = evaluate(**inputs, per_row_path=args.per_row, student_kind=args.student_kind,
                          teacher_kind=args.teacher_kind, temperature=args.temperature,
                          reduction=args.reduction, chunk_rows=args.chunk_rows,
                          threads=args.threads, scheduler=args.scheduler)
    except InputError as error:
        fail(error)
    except OSError as error:  # e.g. the per-row file's disk filled up
        fail(f"{error.filename or 'output'}: {error.strerror or error}")
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        raise SystemExit(130) from None
    print(json.dumps(result.to_dict()) if args.json else result.summary())
    return 0


def _inputs(args):
    """The files and keys to evaluate, as keyword arguments of :func:`evaluate`."""
    if args.demo:
        if args.student or args.teacher:
            fail("--demo runs on the shipped demo set; it takes no STUDENT or TEACHER")
        if args.key or args.student_key or args.teacher_key:
            fail("--demo chooses its own arrays; it takes no --key")
        demo = str(importlib.resources.files("lucid.eval") / "data" / DEMO_FILE)
        return dict(student=demo, teacher=demo, student_key="student", teacher_key="teacher")
    if not (args.student and args.teacher):
        fail("STUDENT and TEACHER are required (or --demo)")
    return dict(student=args.student, teacher=args.teacher,
                student_key=args.student_key or args.key, teacher_key=args.teacher_key or args.key)
