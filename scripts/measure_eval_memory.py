"""Measure the peak resident memory of ``python -m lucid.eval`` over a large logits pair.

Writes a teacher's and a student's logits (``--file-mb`` MiB each, 1000
classes) through memory maps into a temporary directory, as float32 ``.npy``
files or (``--format safetensors``) bfloat16 ``.safetensors`` files, runs
``python -m lucid.eval STUDENT TEACHER --json`` in a child process that reports
its own peak resident set size before and after the job, prints the figures as
JSON and deletes the files.

The peak is Linux's ``VmHWM`` (which counts mapped file pages too), read from
``/proc/self/status``: unlike ``ru_maxrss``, it belongs to the process image
since ``exec``, so the parent's memory at ``fork`` (here: the files it just
wrote through memory maps) does not inflate the child's figure.

The number in docs/guides/evaluation.rst came from::

    python scripts/measure_eval_memory.py --file-mb 2048
    python scripts/measure_eval_memory.py --file-mb 1024 --format safetensors

and tests/test_eval_memory.py runs small versions of both.
"""
import argparse
import json
import math
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


def open_safetensors_bf16(path, shape, key="logits"):
    """Create a one-tensor bfloat16 ``.safetensors`` file; return a writable uint16 map of it."""
    size = 2 * math.prod(shape)
    header = json.dumps({key: {"dtype": "BF16", "shape": list(shape),
                               "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + size)
    return np.memmap(path, dtype="<u2", mode="r+", offset=8 + len(header), shape=shape)


def write_logits_pair(directory, file_mb, classes=1000, seed=0, file_format="npy"):
    """Write the teacher's and the student's logits chunk by chunk; return their paths."""
    itemsize = 2 if file_format == "safetensors" else 4
    rows = file_mb * 2**20 // (itemsize * classes)
    rng = np.random.default_rng(seed)
    paths = [directory / f"teacher.{file_format}", directory / f"student.{file_format}"]
    if file_format == "safetensors":
        maps = [open_safetensors_bf16(p, (rows, classes)) for p in paths]
        # bfloat16 is the high half of a float32: truncate the low 16 bits.
        encode = lambda block: (block.view(np.uint32) >> 16).astype(np.uint16)  # noqa: E731
    else:
        maps = [np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(rows, classes))
                for p in paths]
        encode = lambda block: block  # noqa: E731
    step = 8192
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        block = 3 * rng.standard_normal((stop - start, classes), dtype=np.float32)
        maps[0][start:stop] = encode(block)
        maps[1][start:stop] = encode(block + rng.standard_normal(block.shape, dtype=np.float32))
    for written in maps:
        written.flush()
    del maps, written
    return paths


def measure(file_mb, directory, extra_args=(), file_format="npy"):
    """Run the job over a fresh pair in ``directory``; return the child's figures."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="lucid-eval-memory-") as tmp:
        teacher, student = write_logits_pair(pathlib.Path(tmp), file_mb,
                                             file_format=file_format)
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
    parser.add_argument("--format", choices=["npy", "safetensors"], default="npy",
                        help="float32 .npy files (default) or bfloat16 .safetensors files")
    parser.add_argument("job_args", nargs="*", help="extra options for lucid.eval (after --)")
    args = parser.parse_args()
    print(json.dumps(measure(args.file_mb, args.dir, args.job_args, args.format), indent=2))


if __name__ == "__main__":
    main()
