"""pytest runs the notebooks (nbval) in teacher mode: exercise cells filled with the solutions.

The notebooks ship with their exercises unanswered (`raise NotImplementedError`, and each check
cell says "not yet"). Executing them that way would prove only that the unanswered cells run;
filled in, every `check(...)` must print "correct!" on its hidden cases and the lines that use the
learner's function run too. `tests/test_notebook_exercises.py` covers the unanswered version
cheaply (the exercise and check cells alone), so CI proves both without running the notebooks
twice. `python -m llmup_lib run-all --solutions` is the same filling for a teacher's run.
"""

import os
from pathlib import Path
from unittest import mock

import pytest

try:
    import nbval.plugin as nbval_plugin
except ImportError:  # nbval not installed: nothing to wrap
    nbval_plugin = None


if nbval_plugin is not None:

    class NotebookWithSolutions(nbval_plugin.IPyNbFile):
        """nbval's notebook file, read through ``grader.fill_solutions``."""

        def collect(self):
            from llmup_lib.exercises.grader import fill_solutions

            filled = fill_solutions(self.path)
            # nbval reads the file with nbformat.read in its collect(); hand it the filled copy.
            with mock.patch.object(nbval_plugin.nbformat, "read", lambda *a, **k: filled):
                yield from super().collect()

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(file_path, parent):
        nodes = yield
        return [NotebookWithSolutions.from_parent(parent, path=file_path)
                if type(node) is nbval_plugin.IPyNbFile else node for node in nodes or []]


# ----------------------------------------------------------------------------- parallel run
# `pytest` runs with pytest-xdist (`-n auto --dist loadfile --no-loadscope-reorder` in
# pyproject.toml): one worker per core, each file (so each notebook, whose cells share one kernel
# in order) whole on one worker. Not `loadgroup`: under pytest 9 the group suffix xdist writes
# into `item._nodeid` no longer reaches `item.nodeid`, and a notebook's cells were split.

# The long files, slowest first (cold wall time on 2 cores, 2026-11-30: 08 on SmolLM2 231 s on 2
# threads (2026-12-04; more on a worker's one thread), the Binder build and its
# run of 00-01 about 160 s, 06 123 s, 03 122 s, 02 92 s, 04 79 s, 01 77 s, 05 69 s, 07 61-81 s,
# the benchmark smoke test about 60 s): started first, so no worker is left alone with a long
# one at the end. Everything else keeps its collection order.
_LONG_FIRST = ("08_real_model", "test_binder.py", "03_lora_peft", "02_full_finetuning", "06_distillation",
               "04_instruction_tuning", "04b_knowledge_extraction", "01_baseline", "07_which_upgrade",
               "06b_distillation_recipes", "05_scaling", "05b_knowledge_capacity",
               "test_benchmarks.py")


def pytest_configure(config):
    # A worker shares the machine with the others: one thread each. torch's spinning threads on
    # an oversubscribed core made training about 30x slower here; notebook kernels (subprocesses)
    # inherit this environment.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["MKL_NUM_THREADS"] = "1"


def _rank(item):
    path = str(item.path)
    for rank, name in enumerate(_LONG_FIRST):
        if name in path:
            return rank
    return len(_LONG_FIRST)


def pytest_collection_modifyitems(config, items):
    # The notebooks (nbval cells) belong to the full run only: marked slow here, so the fast tier
    # `pytest -m "not slow"` leaves them out (this conftest's hook runs before pytest's -m filter),
    # except a notebook named on the command line (.ci/run's lowest-versions stage names 00, 01)
    named = {Path(config.invocation_params.dir, a.split("::")[0]).resolve() for a in config.args}
    for item in items:
        if item.path.suffix == ".ipynb" and item.path.resolve() not in named:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_rank)  # a stable sort: the order within each file is kept
