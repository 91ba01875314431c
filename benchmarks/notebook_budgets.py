"""Run every notebook cold, one fresh kernel each, and print wall time and peak memory.

    python benchmarks/notebook_budgets.py              # measure only
    python benchmarks/notebook_budgets.py --save       # also store the executed outputs

The budget of each notebook (default profile, 2 cores) is 180 s wall and 1.5 GB peak RSS;
08, on the real 135 M model, has 300 s and 3.5 GB.
With ``--save`` the executed notebooks replace the committed ones, so readers on the web see the
results of the default profile.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS.parent))  # llmup_lib from this checkout
sys.path.insert(0, str(NOTEBOOKS.parent / "tools"))  # add_colab_cells: the canonical Colab cells

from add_colab_cells import add_cells, dumps  # noqa: E402
from llmup_lib.runall import run_notebook  # noqa: E402
BUDGET_S, BUDGET_MB = 180, 1536
REAL_MODEL_BUDGET = {"08_real_model": (300, 3584)}  # a real 135 M model: its own budget


def run(notebook: Path, save: bool) -> tuple[float, float]:
    """Execute ``notebook`` in a fresh kernel; return (seconds, the kernel's peak RSS in MB).

    Through ``llmup_lib.runall.run_notebook``: nbconvert's executor can stall for its whole
    timeout after a widget cell (jupyter/nbclient#312), which run_notebook works around."""
    with tempfile.TemporaryDirectory() as out:
        result = run_notebook(notebook, Path(out), timeout=900)
        if not result.ok:
            raise SystemExit(f"{notebook.name}: {result.status}")
        if save:
            shutil.copyfile(Path(out) / notebook.name, notebook)
            strip_widget_state(notebook)
    return result.seconds, result.peak_mb


def strip_widget_state(notebook: Path) -> None:
    """Drop what nbconvert stores beside the outputs: git keeps outputs, not live widget models
    or each cell's execution timestamps. The Colab cells are put back in their canonical form
    (``tools/add_colab_cells.py --check`` compares it byte for byte)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
    notebook.write_text(dumps(add_cells(nb, notebook.name)), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--save", action="store_true", help="store outputs in the notebooks")
    parser.add_argument("names", nargs="*", help="notebook stems (default: all)")
    args = parser.parse_args()
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
    if args.names:
        books = [b for b in books if b.stem in args.names]
    print(f"{'notebook':<26}{'wall (s)':>10}{'peak RSS (MB)':>15}  within budget")
    for book in books:
        seconds, mb = run(book, args.save)
        budget_s, budget_mb = REAL_MODEL_BUDGET.get(book.stem, (BUDGET_S, BUDGET_MB))
        ok = seconds <= budget_s and mb <= budget_mb
        print(f"{book.stem:<26}{seconds:>10.1f}{mb:>15.0f}  {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
