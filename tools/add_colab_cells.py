"""Give every notebook its Colab/Binder badges and its Colab setup cell, idempotently.

    python tools/add_colab_cells.py                 # all notebooks/NN_*.ipynb and NNb_*.ipynb, in place
    python tools/add_colab_cells.py --check         # exit 1 if a notebook is missing or stale,
                                                    # or REPO_URL/REF are still placeholders
    python tools/add_colab_cells.py path/to/x.ipynb # just these

Each notebook gets, at the top, a markdown cell with the badges (tag ``colab-badges``) and a
code cell with the self-contained setup snippet (tag ``colab-setup``), both generated from
``llmup_lib.colab.REPO_URL``. Run again after changing the URL: the tagged cells are rewritten in
place, never duplicated, and nothing else in the notebook changes (outputs included).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmup_lib.colab import (  # noqa: E402  (after the path fix, so it runs from a checkout)
    BADGES_TAG, SETUP_TAG, badges_markdown, placeholders, setup_cell_source)


def _lines(text: str) -> list[str]:
    """Notebook JSON stores a cell's source as lines that keep their newlines."""
    return text.splitlines(keepends=True)


def wanted_cells(notebook_name: str) -> list[dict]:
    """The two cells, as nbformat 4.5 JSON, with fixed ids so reruns give identical files."""
    return [
        {"cell_type": "markdown", "id": BADGES_TAG, "metadata": {"tags": [BADGES_TAG]},
         "source": _lines(badges_markdown(notebook_name))},
        {"cell_type": "code", "execution_count": None, "id": SETUP_TAG,
         "metadata": {"tags": [SETUP_TAG]}, "outputs": [],
         "source": _lines(setup_cell_source())},
    ]


def add_cells(nb: dict, notebook_name: str) -> dict:
    """``nb`` with the badge and setup cells first (replaced where they exist already)."""
    new = wanted_cells(notebook_name)
    tags = {BADGES_TAG, SETUP_TAG}
    rest = [c for c in nb["cells"] if not tags & set(c.get("metadata", {}).get("tags", []))]
    out = dict(nb)
    out["cells"] = new + rest
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        for cell in new:  # cell ids arrived in nbformat 4.5
            cell.pop("id")
    return out


def dumps(nb: dict) -> str:
    """The notebooks' on-disk JSON style (Jupyter's: one-space indent, UTF-8 kept)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def update(path: Path, check: bool = False) -> bool:
    """Add or refresh the cells of ``path``; True if the file changed (or, with check, would)."""
    text = path.read_text(encoding="utf-8")
    new_text = dumps(add_cells(json.loads(text), path.name))
    if new_text == text:
        return False
    if not check:
        path.write_text(new_text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to update (default: notebooks/NN_*.ipynb and NNb_*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook lacks the current cells")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    missing = placeholders()
    if args.check and missing:
        print(f"{' and '.join(missing)} in llmup_lib/colab.py still hold placeholders; set the "
              "repository's public URL and the ref to install, then rerun "
              "tools/add_colab_cells.py.")
    changed = [p for p in paths if update(p, check=args.check)]
    for p in changed:
        print(f"{'needs update' if args.check else 'updated'}: {p}")
    if not changed:
        print(f"{len(paths)} notebook(s) already up to date")
    return 1 if args.check and (changed or missing) else 0


if __name__ == "__main__":
    raise SystemExit(main())
