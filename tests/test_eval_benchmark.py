"""benchmarks/bench_eval.py runs and reports both timings and their ratio (tiny inputs here;
the figures themselves are machine-dependent and not asserted)."""
import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_benchmark_reports_both_timings_and_their_ratio(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_eval",
                                                  ROOT / "benchmarks" / "bench_eval.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "figures.json"
    assert bench.main(["--rows", "64", "--classes", "300", "--repetitions", "2", "--labels",
                       "--dir", str(tmp_path), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    seconds = figures["seconds"]
    assert set(seconds) == {"evaluate on .npy files", "compare_rows in memory"}
    assert figures["ratio"] == seconds["evaluate on .npy files"] / seconds["compare_rows in memory"]
    assert (figures["rows"], figures["classes"], figures["labels"]) == (64, 300, True)
    assert "ratio" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json"]  # files removed
