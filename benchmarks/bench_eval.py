"""Time the evaluation job on files against its per-row kernel on the same arrays in memory.

``lucid.eval.evaluate`` over two page-cached ``.npy`` files of float32 logits
(8192 x 32000 by default: two 1 GiB files) is compared with
``lucid.metrics.compare_rows`` on the same arrays already in memory: the
difference is what the job adds (reading the files through memory maps in
chunks, the per-row buffers and the report's statistics). Both run in this
process, after one warm-up run each that also puts the files in the page
cache, so imports and first reads are excluded; repetitions alternate between
the two and medians are reported, with their ratio (the target is at most
1.5).

    python benchmarks/bench_eval.py            # 8192 x 32000, 5 repetitions
    python benchmarks/bench_eval.py --quick    # 1024 x 32000, 3 repetitions
    python benchmarks/bench_eval.py --labels   # with labels (perplexities, Δp)
"""
import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

import lucid
from lucid.eval import evaluate
from lucid.metrics import compare_rows


def write_pair(directory, rows, classes, seed=0):
    """Float32 teacher and student logits as .npy files, and the arrays in memory."""
    rng = np.random.default_rng(seed)
    teacher = 3 * rng.standard_normal((rows, classes), dtype=np.float32)
    student = teacher + rng.standard_normal((rows, classes), dtype=np.float32)
    labels = rng.integers(classes, size=rows)
    paths = [directory / "student.npy", directory / "teacher.npy", directory / "labels.npy"]
    for path, array in zip(paths, (student, teacher, labels)):
        np.save(path, array)
    return [str(p) for p in paths], (student, teacher, labels)


def median_seconds(runs, repetitions):
    """Median wall time of each function of ``runs``, repetitions alternating between them."""
    for run in runs.values():
        run()  # warm-up: page cache, thread pool, first-touch of outputs
    times = {name: [] for name in runs}
    for _ in range(repetitions):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(rows, classes, repetitions, with_labels, directory):
    with tempfile.TemporaryDirectory(dir=directory, prefix="lucid-bench-eval-") as tmp:
        paths, (student, teacher, labels) = write_pair(pathlib.Path(tmp), rows, classes)
        label_file, label_array = (paths[2], labels) if with_labels else (None, None)
        runs = {
            "evaluate on .npy files": lambda: evaluate(paths[0], paths[1], labels=label_file,
                                                       progress=False),
            "compare_rows in memory": lambda: compare_rows(student, teacher,
                                                           labels=label_array),
        }
        seconds = median_seconds(runs, repetitions)
    ratio = seconds["evaluate on .npy files"] / seconds["compare_rows in memory"]
    return {"rows": rows, "classes": classes, "labels": with_labels,
            "threads": lucid.get_num_threads(), "repetitions": repetitions,
            "seconds": seconds, "ratio": ratio,
            "pair_gib": 2 * rows * classes * 4 / 2**30}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1024 rows, 3 repetitions")
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--classes", type=int, default=32000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--labels", action="store_true", help="also give labels")
    parser.add_argument("--dir", default="/tmp", help="where the files go (default /tmp)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    rows, repetitions = (1024, 3) if args.quick else (args.rows, args.repetitions)
    figures = measure(rows, args.classes, repetitions, args.labels, args.dir)
    print(f"{rows:,} x {args.classes:,} float32 logits ({figures['pair_gib']:.2f} GiB pair), "
          f"{figures['threads']} threads, labels: {'yes' if args.labels else 'no'}, "
          f"medians of {repetitions}")
    for name, value in figures["seconds"].items():
        print(f"  {name:<24} {1e3 * value:9.1f} ms")
    print(f"  ratio                    {figures['ratio']:9.2f}x  (target <= 1.5x)")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
