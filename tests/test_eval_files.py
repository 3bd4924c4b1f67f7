"""The files the field writes: safetensors (float32, float16, bfloat16), integer labels, and
the files that are refused (bfloat16 .npy, pickles, torch.save files)."""
import json
import os
import pickle

import numpy as np
import pytest

from lucid.eval import evaluate, main

ST_DTYPES = {"<f2": "F16", "<f4": "F32", "<f8": "F64", "|i1": "I8", "<u2": "U16", "<i4": "I32",
             "<i8": "I64"}


def save_st(path, **tensors):
    """A .safetensors file as the format's description says: a length, a JSON header, the
    little-endian C-order buffers, back to back."""
    header, offset, buffers = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": ST_DTYPES[array.dtype.str], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        buffers.append(data)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(buffers))
    return str(path)


def logits(rng, shape=(150, 24)):
    teacher = 2 * rng.standard_normal(shape)
    return teacher + 0.5 * rng.standard_normal(shape), teacher


def close_stats(got, expected):
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-8), key


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_safetensors_give_the_report_of_float64_copies(rng, tmp_path, dtype):
    student, teacher = (a.astype(dtype) for a in logits(rng))
    labels = rng.integers(24, size=150)
    files = [save_st(tmp_path / "s.safetensors", logits=student),
             save_st(tmp_path / "t.safetensors", logits=teacher),
             save_st(tmp_path / "y.safetensors", labels=labels)]
    got = evaluate(files[0], files[1], labels=files[2], chunk_rows=32)
    wide = evaluate(student.astype(np.float64), teacher.astype(np.float64), labels=labels)
    close_stats(got.stats, wide.stats)
    np.testing.assert_allclose(got.per_row, wide.per_row, rtol=1e-7, atol=1e-9)


def test_bfloat16_safetensors_are_widened_exactly(rng, tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    student, teacher = (torch.from_numpy(a).to(torch.bfloat16) for a in logits(rng))
    for name, tensor in [("s", student), ("t", teacher)]:
        safetensors_torch.save_file({"logits": tensor}, str(tmp_path / f"{name}.safetensors"))
    # The reference: torch's own bfloat16 -> float64 conversion of the same values.
    wide = [t.to(torch.float64).numpy() for t in (student, teacher)]
    got = evaluate(str(tmp_path / "s.safetensors"), str(tmp_path / "t.safetensors"),
                   chunk_rows=40)
    expected = evaluate(*wide)
    close_stats(got.stats, expected.stats)
    from lucid.eval.sources import open_array
    opened = open_array(str(tmp_path / "t.safetensors"), role="teacher")
    np.testing.assert_array_equal(opened.read(0, 150), teacher.to(torch.float32).numpy())
    assert opened.dtype == np.float32


def test_files_of_the_safetensors_package_are_read(rng, tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    student, teacher = (a.astype(np.float32) for a in logits(rng))
    safetensors_numpy.save_file({"logits": student, "other": teacher[:3]},
                                str(tmp_path / "s.safetensors"))
    result = evaluate(str(tmp_path / "s.safetensors"), teacher, student_key="logits")
    np.testing.assert_array_equal(result.per_row, evaluate(student, teacher).per_row)


def test_key_picks_a_tensor_of_a_safetensors_file(rng, tmp_path, capsys):
    student, teacher = (a.astype(np.float32) for a in logits(rng))
    path = save_st(tmp_path / "both.safetensors", student=student, teacher=teacher)
    assert main([path, path, "--student-key", "student", "--teacher-key", "teacher",
                 "--json"]) == 0
    kl = json.loads(capsys.readouterr().out)["kl"]
    assert kl == pytest.approx(evaluate(student, teacher).kl, rel=1e-12)
    with pytest.raises(SystemExit):
        main([path, path])
    assert "holds 'student', 'teacher'; choose one with --key" in capsys.readouterr().err


@pytest.mark.parametrize("header, fragment", [
    (b"{not json", "no valid safetensors header"),
    (b'{"x": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 99]}}', "holds 99 bytes"),
    (b'{"x": {"dtype": "C64", "shape": [4, 2], "data_offsets": [0, 64]}}', "dtype 'C64'"),
    (b'{"x": {"dtype": "F32", "shape": [400, 2], "data_offsets": [0, 3200]}}', "truncated"),
])
def test_broken_safetensors_are_one_line_errors(tmp_path, capsys, header, fragment):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(64))
    good = save_st(tmp_path / "t.safetensors", x=np.zeros((4, 2), np.float32))
    with pytest.raises(SystemExit) as exited:
        main([str(path), good])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and fragment in err, err


def test_bfloat16_npy_suggests_safetensors(tmp_path, capsys):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    np.save(tmp_path / "s.npy", np.zeros((4, 3), dtype=ml_dtypes.bfloat16))
    np.save(tmp_path / "t.npy", np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "s.npy"), str(tmp_path / "t.npy")])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert "bfloat16" in err and ".safetensors" in err


class RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_is_refused_and_nothing_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    (tmp_path / "s.pkl").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(str(marker))))
    np.save(tmp_path / "t.npy", np.zeros((2, 2)))
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "s.pkl"), str(tmp_path / "t.npy")])
    assert exited.value.code == 2 and "pickle" in capsys.readouterr().err
    assert not marker.exists()


def test_torch_save_file_is_refused_and_nothing_runs(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    torch.save({"logits": torch.zeros(2, 2), "trap": RunsCodeWhenUnpickled(str(marker))},
               tmp_path / "s.pt")
    np.save(tmp_path / "t.npy", np.zeros((2, 2)))
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "s.pt"), str(tmp_path / "t.npy")])
    assert exited.value.code == 2 and "torch.save" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64])
def test_labels_of_any_integer_dtype(rng, tmp_path, dtype):
    student, teacher = logits(rng, (120, 20))
    labels = rng.integers(20, size=120)
    expected = evaluate(student, teacher, labels=labels).stats
    path = save_st(tmp_path / "y.safetensors", y=labels.astype(dtype))
    assert evaluate(student, teacher, labels=path).stats == expected
    np.save(tmp_path / "y.npy", labels.astype(dtype))
    assert evaluate(student, teacher, labels=str(tmp_path / "y.npy")).stats == expected
