"""python -m lucid.eval keeps its memory at the chunk size, not the file size.

Small versions of the measurements in docs/guides/evaluation.rst: a 200 MiB
float32 .npy logits pair and a 120 MiB bfloat16 .safetensors pair, each
evaluated in a child process whose peak resident memory (mapped file pages
included) may grow by a small fraction of the data only.
"""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "measure_eval_memory.py"
_spec = importlib.util.spec_from_file_location("measure_eval_memory", SCRIPT)
measure_eval_memory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measure_eval_memory)


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    if not pathlib.Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from Linux's /proc/self/status")
    return measure_eval_memory.measure(100, tmp_path_factory.mktemp("pair"))


def test_safetensors_bfloat16_pair_is_read_in_chunks(tmp_path):
    if not pathlib.Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from Linux's /proc/self/status")
    figures = measure_eval_memory.measure(60, tmp_path, file_format="safetensors")
    # bfloat16 rows widened to float32 chunk by chunk (~40 MiB of chunks and their
    # float32 copies); one file loaded whole and widened would alone add 120 MiB.
    assert figures["growth_mib"] < figures["pair_mib"] / 2, figures
    assert figures["job"]["rows"] == 60 * 2**20 // 2000
    assert 0.2 < figures["job"]["kl"] < 0.8


def test_peak_memory_grows_far_less_than_the_data(figures):
    # Two 8 MiB chunk windows and the per-row values: ~20 MiB, against 200 MiB of data.
    assert figures["growth_mib"] < figures["pair_mib"] / 4, figures


def test_large_pair_is_evaluated_whole(figures):
    job = figures["job"]
    assert job["rows"] == 100 * 2**20 // 4000 and job["classes"] == 1000
    # Teacher logits 3 z, student 3 z + noise: a KL per row well inside (0, 1).
    assert 0.2 < job["kl"] < 0.8


def test_script_runs_as_a_command(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--file-mb", "4", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"growth_mib"' in done.stdout
    assert list(tmp_path.iterdir()) == []  # the pair was deleted
