"""pytest runs the notebooks (nbval) in teacher mode: exercise cells filled with the solutions.

The notebooks ship with their exercises unanswered (`raise NotImplementedError`, and each check
cell says "not yet"). Executing them that way would prove only that the unanswered cells run;
filled in, every `check(...)` must print "correct!" on its hidden cases and the lines that use the
learner's function run too. `tests/test_notebook_exercises.py` covers the unanswered version
cheaply (the exercise and check cells alone), so CI proves both without running the notebooks
twice. `python -m llmup_lib run-all --solutions` is the same filling for a teacher's run.
"""

from unittest import mock

import pytest

try:
    import nbval.plugin as nbval_plugin
except ImportError:  # nbval not installed: nothing to wrap
    nbval_plugin = None


if nbval_plugin is not None:

    class NotebookWithSolutions(nbval_plugin.IPyNbFile):
        """nbval's notebook file, read through ``grading.fill_solutions``."""

        def collect(self):
            from llmup_lib.grading import fill_solutions

            filled = fill_solutions(self.path)
            # nbval reads the file with nbformat.read in its collect(); hand it the filled copy.
            with mock.patch.object(nbval_plugin.nbformat, "read", lambda *a, **k: filled):
                yield from super().collect()

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(file_path, parent):
        nodes = yield
        return [NotebookWithSolutions.from_parent(parent, path=file_path)
                if type(node) is nbval_plugin.IPyNbFile else node for node in nodes or []]
