"""lucid.dask and lucid.eval --scheduler: a LocalCluster gives the single-machine answers."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import lucid.dask  # noqa: E402  (after the skips: it needs Dask)
from lucid.eval import InputError, evaluate, main  # noqa: E402
from lucid.eval.cluster import rows_on_cluster  # noqa: E402
from lucid.eval.job import Options  # noqa: E402
from lucid.eval.rows import RowBuffers  # noqa: E402
from lucid.eval.sources import open_array  # noqa: E402
from lucid.metrics import KLDivergence, kl_div_per_row  # noqa: E402
from lucid.nn.functional import kl_div  # noqa: E402

from conftest import random_distributions  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as connected:
            yield connected


def uneven(array, rows=(7, 30, 1, 22)):
    """A Dask array split into uneven blocks of rows (and two blocks of columns)."""
    return da.from_array(array, chunks=(rows, (3, array.shape[1] - 3)))


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_on_local_cluster_equals_single_machine(rng, client, reduction, log_target):
    log_q, p = random_distributions(rng, (60, 8))
    target = np.log(p) if log_target else p
    lazy = lucid.dask.kl_div(uneven(log_q), uneven(target), reduction=reduction,
                             log_target=log_target)
    got = client.compute(lazy).result()
    expected = kl_div(log_q, target, reduction=reduction, log_target=log_target).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_row_blocks_combine_exactly_as_the_metric(rng, client):
    log_q, p = random_distributions(rng, (60, 8))
    cuts = [0, 7, 37, 38, 60]
    metric = KLDivergence(reduction="sum")
    for start, stop in zip(cuts, cuts[1:]):
        metric.update(log_q[start:stop], p[start:stop])
    lazy = lucid.dask.kl_div(da.from_array(log_q, chunks=(np.diff(cuts).tolist(), 8)), p,
                             reduction="sum")
    assert client.compute(lazy).result() == metric.compute()


def test_none_reduction_on_local_cluster_equals_single_machine(rng, client):
    log_q, p = random_distributions(rng, (60, 8), np.float32)
    got = client.compute(lucid.dask.kl_div(uneven(log_q), p[0], reduction="none")).result()
    expected = kl_div(log_q, p[0], reduction="none").numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kinds", [("logits", "logits"), ("log-probs", "probs")])
def test_per_row_on_local_cluster_is_bitwise_the_single_machine_one(rng, client, kinds):
    log_q, p = random_distributions(rng, (60, 8))
    student = log_q if kinds[0] == "log-probs" else 2 * log_q
    options = dict(student_kind=kinds[0], teacher_kind=kinds[1], temperature=1.0)
    lazy = lucid.dask.kl_div_per_row(uneven(student), uneven(p), **options)
    np.testing.assert_array_equal(client.compute(lazy).result(),
                                  kl_div_per_row(student, p, **options))


def test_cli_with_scheduler_equals_single_machine(rng, client, tmp_path, capsys):
    teacher = 3 * rng.standard_normal((500, 40))
    np.save(tmp_path / "t.npy", teacher)
    np.save(tmp_path / "s.npy", teacher + rng.standard_normal(teacher.shape))
    files = [str(tmp_path / "s.npy"), str(tmp_path / "t.npy"), "--temperature", "2",
             "--chunk-rows", "64", "--json"]
    main([*files, "--per-row", str(tmp_path / "here.npy")])
    here = json.loads(capsys.readouterr().out)
    main([*files, "--per-row", str(tmp_path / "there.npy"), "--scheduler",
          client.scheduler.address])
    there = json.loads(capsys.readouterr().out)
    assert there["kl"] == here["kl"]
    assert there["threads"] == 2 and there["scheduler"] == client.scheduler.address
    np.testing.assert_array_equal(np.load(tmp_path / "there.npy"), np.load(tmp_path / "here.npy"))


def test_cluster_job_reads_npz_members_and_arrays(rng, client, tmp_path):
    student, teacher = rng.standard_normal((2, 90, 6))
    np.savez_compressed(tmp_path / "pair.npz", s=student, t=teacher)
    from_files = evaluate(str(tmp_path / "pair.npz"), str(tmp_path / "pair.npz"), student_key="s",
                          teacher_key="t", chunk_rows=20, scheduler=client.scheduler.address)
    from_arrays = evaluate(student, teacher, chunk_rows=20, scheduler=client.scheduler.address)
    np.testing.assert_array_equal(from_files.per_row, kl_div_per_row(student, teacher))
    np.testing.assert_array_equal(from_arrays.per_row, from_files.per_row)


def test_file_a_worker_cannot_read_raises_input_error(client, tmp_path):
    # Workers open files by path; one that is missing there (no shared file
    # system) comes back as the job's one-line InputError, not a traceback.
    np.save(tmp_path / "s.npy", np.zeros((10, 3)))
    student = open_array(str(tmp_path / "s.npy"), role="student")
    teacher = SimpleNamespace(origin=(str(tmp_path / "gone.npy"), None, "teacher"),
                              shape=(10, 3), dtype=np.dtype(np.float64))
    with pytest.raises(InputError, match="teacher .*gone.npy.*: no such file"):
        rows_on_cluster(client.scheduler.address, [student, teacher], None,
                        RowBuffers(1, (10,), with_labels=False), 5, Options(),
                        show_progress=False)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_differently_chunked_inputs_are_aligned(rng, reduction):
    log_q, p = random_distributions(rng, (60, 8))
    lazy = lucid.dask.kl_div(uneven(log_q), da.from_array(p, chunks=(25, 5)), reduction=reduction)
    np.testing.assert_allclose(lazy.compute(scheduler="synchronous"),
                               kl_div(log_q, p, reduction=reduction).numpy(), rtol=1e-12)


def test_per_row_aligns_a_numpy_teacher_with_a_chunked_student(rng):
    student, teacher = rng.standard_normal((2, 60, 8))
    lazy = lucid.dask.kl_div_per_row(uneven(student), teacher)
    np.testing.assert_array_equal(lazy.compute(scheduler="synchronous"),
                                  kl_div_per_row(student, teacher))


def test_unknown_reduction_raises_value_error():
    with pytest.raises(ValueError, match="'none', 'mean', 'sum', 'batchmean'"):
        lucid.dask.kl_div(da.zeros((2, 2)), da.zeros((2, 2)), reduction="avg")


def test_integer_input_raises_type_error():
    with pytest.raises(TypeError, match="floating dtype.*int64"):
        lucid.dask.kl_div(da.zeros((2, 2), dtype=np.int64), da.zeros((2, 2)))


def test_shapes_that_do_not_broadcast_raise_value_error():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        lucid.dask.kl_div(da.zeros((2, 3)), da.zeros((2, 4)))


def test_unknown_chunk_sizes_raise_value_error():
    x = da.zeros((6, 2), chunks=2)
    filtered = x[x[:, 0] == 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        lucid.dask.kl_div(filtered, filtered)


def test_per_row_with_different_shapes_raises_value_error():
    with pytest.raises(ValueError, match="must share one shape"):
        lucid.dask.kl_div_per_row(da.zeros((2, 3)), da.zeros((3, 3)))
