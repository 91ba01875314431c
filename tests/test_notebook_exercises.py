"""The notebooks' exercises, both ways, without running the notebooks.

pytest executes the notebooks with the solutions filled in (the root ``conftest.py``); here the
exercise cells themselves run as shipped (unanswered: every check says "not yet" and nothing
raises) and filled (every check passes), plus the notebook's frame around them: objectives first,
"you can now" and references last, no solution cell in the learner's way.
"""

import ast
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llmup_lib.exercises.grader import (YOUR_CODE_HERE, exercises, fill_solutions, get_exercise,
                                        grade)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-7]_*.ipynb"))
# 00 has one graded exercise, in the same form (its frame is a start page, not a lesson's); an
# optional `b` notebook may carry the exercise of a section it took over (06b: reverse KL)
EXERCISE_BOOKS = sorted((ROOT / "notebooks").glob("0[0-7]*_*.ipynb"))


def read(path):
    return nbformat.read(str(path), as_version=4)


def exercise_cells(nb):
    return [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]


def run_cell(source):
    """Execute a cell's source in a fresh namespace; returns the namespace."""
    namespace = {}
    exec(compile(source, "<exercise cell>", "exec"), namespace)
    return namespace


def graded(exercise_id, fn):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = grade(exercise_id, fn)
    return ok, out.getvalue()


def test_there_are_seven_notebooks_to_check():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", EXERCISE_BOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_at_least_three_graded_exercises_each_with_its_check(path):
    nb = read(path)
    cells = exercise_cells(nb)
    optional = path.name[2] == "b"
    assert len(cells) >= (1 if path.name.startswith("00") else 0 if optional else 3), path.name
    for cell in cells:
        ex = get_exercise(cell.metadata["exercise_id"])
        assert ex.id.startswith(path.name[:2] + "."), (path.name, ex.id)
        assert YOUR_CODE_HERE in cell.source and "raise NotImplementedError" in cell.source
        assert f"def {ex.name}(" in cell.source
        # the next code cell grades it, and nothing else comes first
        after = nb.cells[nb.cells.index(cell) + 1:]
        check_cell = next(c for c in after if c.cell_type == "code")
        assert "exercise-check" in check_cell.metadata.get("tags", [])
        first = ast.parse(check_cell.source).body[0]
        assert ast.unparse(first) == f"ok = check({ex.name})", check_cell.source


def test_every_exercise_of_the_bank_is_in_exactly_one_notebook():
    ids = [c.metadata["exercise_id"] for p in EXERCISE_BOOKS for c in exercise_cells(read(p))]
    assert sorted(ids) == sorted(exercises()), sorted(set(exercises()) ^ set(ids))


@pytest.mark.parametrize("path", EXERCISE_BOOKS, ids=lambda p: p.stem)
def test_unanswered_exercises_run_and_every_check_says_not_yet(path):
    for cell in exercise_cells(read(path)):
        ex = get_exercise(cell.metadata["exercise_id"])
        ok, printed = graded(ex.id, run_cell(cell.source)[ex.name])
        assert ok is False
        assert printed.count("\n") == 1 and "not yet" in printed
        assert "write your code in the exercise cell" in printed, printed


@pytest.mark.parametrize("path", EXERCISE_BOOKS, ids=lambda p: p.stem)
def test_filled_in_exercises_pass_their_checks(path):
    for cell in exercise_cells(fill_solutions(path)):
        ex = get_exercise(cell.metadata["exercise_id"])
        assert YOUR_CODE_HERE not in cell.source
        ok, printed = graded(ex.id, run_cell(cell.source)[ex.name])
        assert ok is True, printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_objectives_first_you_can_now_and_references_last(path):
    nb = read(path)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    opening = markdown[1].source  # after the Colab badges
    assert opening.startswith("# " + path.name[:2]) and "**Learning objectives.**" in opening
    assert opening.count("\n- ") >= 3
    you_can_now = markdown[-2]
    assert you_can_now.metadata.get("tags") == ["you-can-now"]
    assert you_can_now.source.startswith("## You can now") and you_can_now.source.count("\n- ") >= 3
    refs = markdown[-1]
    assert refs.metadata.get("tags") == ["references"] and refs.source.startswith("## References")
    rows = [line for line in refs.source.splitlines() if line.startswith("| ") and "(20" in line]
    assert len(rows) >= 3, refs.source  # each: a paper (its year), its claim, the suite's number


@pytest.mark.parametrize("path", EXERCISE_BOOKS, ids=lambda p: p.stem)
def test_no_solution_sits_in_the_learners_way(path):
    nb = read(path)
    for cell in nb.cells:
        assert "solution" not in cell.metadata.get("tags", []), cell.source[:80]
        assert not cell.source.startswith("# Solution"), cell.source[:80]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_are_clean(path):
    """Outputs of the default profile are committed; no widget state, no machine's paths."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in raw["metadata"]
    outputs = json.dumps([c.get("outputs", []) for c in raw["cells"]])
    for private in ("/work/", "/home/", "/root/", "/tmp/", "C:\\\\Users"):
        assert private not in outputs, (path.name, private)


@pytest.mark.slow  # 35 s on 2 shared cores (2026-12-04)
def test_pytest_runs_notebooks_with_the_solutions_filled_in(tmp_path):
    """A notebook whose check cell asserts the exercise passes: green only if conftest filled it."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from llmup_lib.exercises.grader import check"),
        nbformat.v4.new_code_cell("def lora_scale(alpha, rank):\n    # YOUR CODE HERE\n"
                                  "    raise NotImplementedError",
                                  metadata={"tags": ["exercise"], "exercise_id": "03.lora_scale"}),
        nbformat.v4.new_code_cell("assert check(lora_scale)"),
    ]
    path = tmp_path / "filled.ipynb"
    nbformat.write(nb, str(path))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
         "--nbval-lax", "--nbval-current-env", "--rootdir", str(tmp_path), str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout


# Jargon the review found used before it was defined: where each first appears in 01-08's text,
# it links to 00's glossary ("Words the suite uses"), which defines it in one sentence.
GLOSSARY_TERMS = {"tied output layer":
                  r"tied (?:output|embedding)[a-z ]*?(?:layer|embeddings?|weights?)",
                  "muP": r"μP|muP", "induction head": r"induction (?:heads?|plateau)",
                  "KV cache": r"KV cache", "Pareto front": r"Pareto(?: front)?",
                  "seed deviation": r"seed deviations?", "excess": r"\bexcess\b"}


@pytest.mark.parametrize("term", sorted(GLOSSARY_TERMS))
def test_jargon_links_to_the_glossary_where_it_first_appears(term):
    import re

    glossary = next(c.source for c in read(ROOT / "notebooks" / "00_start_here.ipynb").cells
                    if c.get("id") == "glossary")
    assert glossary.startswith("### Words the suite uses")
    first = None
    for path in sorted((ROOT / "notebooks").glob("0[1-8]_*.ipynb")):
        cells = [c for c in read(path).cells if c.cell_type == "markdown"
                 and re.search(GLOSSARY_TERMS[term], c.source)]
        if cells:
            first = (path.name, cells[0].source)
            break
    assert first is not None, term
    assert "(00_start_here.ipynb#Words-the-suite-uses)" in first[1], first[0]


# Core notebooks read at a glance: at most 45 cells and 2,500 words of text each (issue 27).
# Research extensions live in optional `b` notebooks (04b, 05b, 06b), which these limits skip.
CORE_LIMITS = {"cells": 45, "words": 2500}


def _size(path):
    import re

    nb = read(path)
    words = sum(len(re.findall(r"[A-Za-z0-9][\w'’.-]*", c.source))
                for c in nb.cells if c.cell_type == "markdown")
    return len(nb.cells), words


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("0[0-8]_*.ipynb")),
                         ids=lambda p: p.stem)
def test_core_notebooks_stay_short(path):
    cells, words = _size(path)
    assert cells <= CORE_LIMITS["cells"] and words <= CORE_LIMITS["words"], (path.stem, cells, words)


# Results read at a glance: no saved output line longer than 120 characters (issue 27).
@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("0*.ipynb")), ids=lambda p: p.stem)
def test_saved_output_lines_fit_120_characters(path):
    long = [line[:60] for cell in read(path).cells for out in cell.get("outputs", [])
            for line in out.get("text", "").splitlines() if len(line) > 120]
    assert not long, (path.stem, long)


# Every name a notebook's code uses is defined in it, in cells that run only with real weights
# too (two such cells used a name nothing imported, and no test without the weights ran them).
@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("0*.ipynb")), ids=lambda p: p.stem)
def test_every_name_a_notebook_uses_is_defined(path):
    from pyflakes.api import check as pyflakes_check
    from pyflakes.reporter import Reporter

    code = "\n".join(c.source for c in read(path).cells if c.cell_type == "code"
                     and "colab-setup" not in c.metadata.get("tags", [])
                     and not c.source.lstrip().startswith(("%", "!")))
    found = io.StringIO()
    pyflakes_check(code, path.name, Reporter(found, found))
    undefined = [line for line in found.getvalue().splitlines() if "undefined name" in line]
    assert not undefined, undefined
