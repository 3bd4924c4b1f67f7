"""Measure the peak resident memory of ``python -m lucid.eval`` over a large logits pair.

Writes a teacher's and a student's float32 logits (``--file-mb`` MiB each, 1000
classes) with ``np.lib.format.open_memmap`` into a temporary directory, runs
``python -m lucid.eval STUDENT TEACHER --json`` in a child process that reports
its own peak resident set size before and after the job, prints the figures as
JSON and deletes the files.

The peak is Linux's ``VmHWM`` (which counts mapped file pages too), read from
``/proc/self/status``: unlike ``ru_maxrss``, it belongs to the process image
since ``exec``, so the parent's memory at ``fork`` (here: the files it just
wrote through memory maps) does not inflate the child's figure.

The number in docs/guides/evaluation.rst came from::

    python scripts/measure_eval_memory.py --file-mb 2048

and tests/test_eval_memory.py runs a 100 MiB version of it.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = """
import contextlib, io, json, sys
import lucid.eval

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

baseline = peak_kib()
report = io.StringIO()
with contextlib.redirect_stdout(report):
    lucid.eval.main(sys.argv[1:] + ["--json"])
print(json.dumps({"baseline_kib": baseline, "peak_kib": peak_kib(),
                  "job": json.loads(report.getvalue())}))
"""


def write_logits_pair(directory, file_mb, classes=1000, seed=0):
    """Write ``teacher.npy`` and ``student.npy`` chunk by chunk; return their paths."""
    rows = file_mb * 2**20 // (4 * classes)
    rng = np.random.default_rng(seed)
    paths = [directory / "teacher.npy", directory / "student.npy"]
    teacher, student = (np.lib.format.open_memmap(p, mode="w+", dtype=np.float32,
                                                  shape=(rows, classes)) for p in paths)
    step = 8192
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        block = 3 * rng.standard_normal((stop - start, classes), dtype=np.float32)
        teacher[start:stop] = block
        student[start:stop] = block + rng.standard_normal(block.shape, dtype=np.float32)
    teacher.flush()
    student.flush()
    del teacher, student
    return paths


def measure(file_mb, directory, extra_args=()):
    """Run the job over a fresh pair in ``directory``; return the child's figures."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="lucid-eval-memory-") as tmp:
        teacher, student = write_logits_pair(pathlib.Path(tmp), file_mb)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(student), str(teacher),
                               *extra_args], capture_output=True, text=True, check=True)
        figures = json.loads(done.stdout)
        figures["wall_seconds"] = time.perf_counter() - start
        figures["pair_mib"] = 2 * file_mb
    figures["peak_mib"] = figures.pop("peak_kib") / 1024
    figures["baseline_mib"] = figures.pop("baseline_kib") / 1024
    figures["growth_mib"] = figures["peak_mib"] - figures["baseline_mib"]
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file-mb", type=int, default=2048, help="MiB per file (default 2048)")
    parser.add_argument("--dir", default="/tmp", help="where the files go (default /tmp)")
    parser.add_argument("job_args", nargs="*", help="extra options for lucid.eval (after --)")
    args = parser.parse_args()
    print(json.dumps(measure(args.file_mb, args.dir, args.job_args), indent=2))


if __name__ == "__main__":
    main()
