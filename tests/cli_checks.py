"""Shared checks of lucid.eval's command line: a valid pair of files and the one-line failure."""
import numpy as np
import pytest

from lucid.eval import main


def write_good_pair(directory):
    """A valid student/teacher pair of (6, 4) .npy logits files in ``directory``; their paths."""
    rng = np.random.default_rng(0)
    paths = []
    for name in ("student.npy", "teacher.npy"):
        np.save(directory / name, rng.standard_normal((6, 4)))
        paths.append(str(directory / name))
    return paths


def fails(capsys, argv, *fragments):
    """Run main(argv): it must exit 2 after one stderr line holding every fragment."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("lucid.eval: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err
