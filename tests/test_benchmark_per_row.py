"""benchmarks/bench_per_row.py runs and reports every target of the row kernel's issue.

The figures are machine-dependent and not asserted; this runs the script on
tiny inputs so that a change that breaks it is caught by the test suite.
"""
import importlib.util
import json
import pathlib

import pytest

import lucid

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_per_row.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_per_row", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_threads():
    threads = lucid.get_num_threads()
    yield
    lucid.set_num_threads(threads)


def test_every_target_is_measured_and_reported(bench, tmp_path, restore_threads, capsys):
    out = tmp_path / "figures.json"
    bench.main(["--rows", "8", "--cols", "300", "--sweep-bytes", "40000", "--vocabularies",
                "100", "5000", "--repetitions", "2", "--no-jax", "--json", str(out)])
    figures = json.loads(out.read_text())
    groups = [case["group"] for case in figures["cases"]]
    assert groups == ["logits", "labels and top-1", "threads", "log-probs", "3 students",
                      "vocabulary", "vocabulary"]
    for case in figures["cases"]:
        assert all(seconds > 0 for seconds in case["seconds"].values()), case["case"]
        assert all(len(samples) == 2 for samples in case["samples"].values()), case["case"]
    assert {"lucid", "probe"} <= set(figures["cases"][0]["seconds"])
    printed = capsys.readouterr().out
    for target in ["lucid / probe", "lucid, 3 students / lucid, 1 student",
                   "1 thread / 2 threads", "lucid + labels + top-1 / lucid"]:
        assert target in printed
    assert len(figures["targets"]) >= 7
