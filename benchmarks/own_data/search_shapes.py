"""Issue 19's small data set of one's own, searched for real: 180 pictures of three shapes at
64 px (tests/shapes.py), as a folder of PNG/JPEG files and as numpy arrays.

    python benchmarks/own_data/search_shapes.py make DIR [--hard]        # DIR/circle/*.png|jpg, ...
    nasty search --space nasnet --budget 600MFLOPs --dataset imagefolder --data-dir DIR/ --time-budget 240
    python benchmarks/own_data/search_shapes.py arrays RUNS_DIR NAME     # the same search from Python, on arrays

`arrays` runs nasty.search(..., data=(x, y)) with the README's Python options and prints each
trial's validation accuracy, the winner and the warnings.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))          # nasty itself comes from PYTHONPATH (before/after)

from shapes import make_shapes, shapes_arrays  # noqa: E402


def main(argv):
    if argv[:1] == ["make"]:
        print(make_shapes(argv[1], hard="--hard" in argv))
        return
    if argv[:1] == ["arrays"]:
        import nasty
        x, y = shapes_arrays(60, 64, seed=1)
        result = nasty.search("nasnet", budget="600MFLOPs", data=(x, y), time_budget=float(argv[3]) if len(argv) > 3
                              else 240.0, runs_dir=argv[1], name=argv[2])
        for r in result.records:
            if r.val_acc is not None:
                print(f"trial #{r.trial} val {r.val_acc:.4f}")
        best = result.best
        print("best:", best and best.trial, best and best.val_acc, "test", result.test_acc)
        print("images:", result.summary.get("images"))
        for w in result.summary.get("warnings") or []:
            print(w)
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
