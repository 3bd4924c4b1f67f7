"""``--plot``: a PNG of each student's per-row KL distribution, or one line without matplotlib."""
import sys

import numpy as np
import pytest

from lucid.eval import main


@pytest.fixture
def pair(rng, tmp_path):
    teacher = rng.standard_normal((200, 10))
    for name, array in [("s0", teacher + 0.2 * rng.standard_normal(teacher.shape)),
                        ("s1", teacher + rng.standard_normal(teacher.shape)), ("t", teacher)]:
        np.save(tmp_path / f"{name}.npy", array)
    return [str(tmp_path / f"{name}.npy") for name in ("s0", "s1", "t")]


def test_plot_writes_a_png_with_a_line_per_student(pair, tmp_path, capsys):
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "kl.png"
    assert main([*pair, "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(out)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    # Two coloured curves: matplotlib's first two cycle colours both appear.
    rgb = (pixels[..., :3] * 255).round().astype(int).reshape(-1, 3)
    for colour in ([31, 119, 180], [255, 127, 14]):
        assert (np.abs(rgb - colour).sum(axis=1) < 30).sum() > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kl.png", "s0.npy", "s1.npy", "t.npy"]


def test_plot_without_matplotlib_is_one_line_and_status_2(pair, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(SystemExit) as exited:
        main([*pair, "--plot", str(tmp_path / "kl.png"), "--per-row", str(tmp_path / "r.npz")])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err == ("lucid.eval: error: --plot needs matplotlib, which is not installed: "
                   "pip install 'lucid[plot]'\n")
    assert not (tmp_path / "kl.png").exists() and not (tmp_path / "r.npz").exists()
