"""``python -m lucid.eval``: KL(teacher || student) over .npy/.npz files (see ``--help``)."""
import sys

from lucid.eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
