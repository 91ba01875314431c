"""Colab/Binder links and the self-contained setup cell, all generated from one REPO_URL and
one REF (both placeholders until the project has a public remote)."""

import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from llmup_lib import colab

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("add_colab_cells",
                                                  ROOT / "tools" / "add_colab_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unset(monkeypatch, name):
    """Unset ``name`` for this test and restore it after (delenv alone does not record a
    variable that was absent, so one the test then sets would leak into later tests)."""
    monkeypatch.setenv(name, "placeholder")
    monkeypatch.delenv(name)


def test_badge_urls_come_from_the_one_repo_url_and_ref(monkeypatch):
    monkeypatch.setattr(colab, "REPO_URL", "https://github.com/someone/llmup-fork")
    monkeypatch.setattr(colab, "REF", "v0.1.0")
    assert colab.colab_url("02_full_finetuning.ipynb") == (
        "https://colab.research.google.com/github/someone/llmup-fork/blob/v0.1.0/"
        "notebooks/02_full_finetuning.ipynb")
    assert colab.binder_url() == (
        "https://mybinder.org/v2/gh/someone/llmup-fork/v0.1.0"
        "?urlpath=lab/tree/notebooks/00_start_here.ipynb")
    badges = colab.badges_markdown("03_lora_peft")
    assert "(https://colab.research.google.com/github/someone/llmup-fork/blob/v0.1.0/notebooks/" \
           "03_lora_peft.ipynb)" in badges
    assert "colab-badge.svg" in badges and "mybinder.org/badge_logo.svg" in badges
    assert colab.github_repo(colab.REPO_URL + ".git") == "someone/llmup-fork"
    assert colab.install_spec() == "llmup @ git+https://github.com/someone/llmup-fork@v0.1.0"
    assert colab.placeholders() == []
    with pytest.raises(ValueError, match="not a GitHub repository URL"):
        colab.github_repo("https://gitlab.com/a/b")


def test_the_repo_url_and_ref_are_obvious_placeholders_until_set():
    assert colab.placeholders() == ["REPO_URL", "REF"]
    # GitHub owner names allow only letters, digits and single hyphens: this one cannot exist
    owner = colab.github_repo().split("/")[0]
    assert "_" in owner
    assert colab.placeholders("https://github.com/a/b", "v1") == []
    assert colab.placeholders("https://github.com/a/b", "") == ["REF"]


def test_check_fails_while_a_placeholder_is_set(monkeypatch, capsys):
    tool = _tool()
    assert tool.main(["--check"]) == 1  # the notebooks are current; the placeholders are not
    out = capsys.readouterr().out
    assert "REPO_URL and REF in llmup_lib/colab.py still hold placeholders" in out
    assert "needs update" not in out
    monkeypatch.setattr(tool, "placeholders", lambda: [])
    assert tool.main(["--check"]) == 0  # every notebook carries the current cells


def test_insertion_is_idempotent_and_keeps_the_notebook(tmp_path, monkeypatch):
    tool = _tool()
    path = tmp_path / "00_start_here.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_start_here.ipynb", path)
    before = json.loads(path.read_text())
    before_cells = [c for c in before["cells"]
                    if not {"colab-setup", "colab-badges"} & set(c["metadata"].get("tags", []))]

    tool.update(path)
    once = path.read_text()
    nb = json.loads(once)
    assert nb["cells"][0]["metadata"]["tags"] == ["colab-badges"]
    assert nb["cells"][1]["metadata"]["tags"] == ["colab-setup"]
    assert "".join(nb["cells"][0]["source"]) == colab.badges_markdown("00_start_here.ipynb")
    assert "".join(nb["cells"][1]["source"]) == colab.setup_cell_source()
    assert nb["cells"][2:] == before_cells  # everything else untouched, outputs included
    assert {k: v for k, v in nb.items() if k != "cells"} == \
           {k: v for k, v in before.items() if k != "cells"}

    assert tool.update(path) is False  # a second run changes nothing
    assert path.read_text() == once
    monkeypatch.setattr(tool, "placeholders", lambda: [])
    assert tool.main(["--check", str(path)]) == 0

    # a new URL rewrites the two cells in place instead of adding two more
    monkeypatch.setattr(tool, "badges_markdown",
                        lambda name: colab.badges_markdown(name, "https://github.com/x/y"))
    assert tool.main(["--check", str(path)]) == 1
    assert tool.update(path) is True
    nb = json.loads(path.read_text())
    assert len(nb["cells"]) == len(before_cells) + 2
    assert "github/x/y/blob" in "".join(nb["cells"][0]["source"])


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    assert "google.colab" not in sys.modules

    def forbidden(*args, **kwargs):
        raise AssertionError(f"the setup cell ran a command outside Colab: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)
    _unset(monkeypatch, "LLMUP_PROFILE")
    path_before = list(sys.path)
    source = colab.setup_cell_source()
    # it must run before the package is installed: it only asks whether llmup_lib exists
    assert "import llmup_lib" not in source and "from llmup_lib" not in source
    exec(compile(source, "<colab-setup>", "exec"), {})  # its time: benchmarks/bench_timings.py
    assert colab.colab_setup() is False
    assert "LLMUP_PROFILE" not in __import__("os").environ
    assert sys.path == path_before


def test_setup_cell_on_colab_installs_the_pinned_ref_once_and_picks_the_gpu(monkeypatch):
    import importlib.util

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _unset(monkeypatch, "LLMUP_PROFILE")
    real_find_spec = importlib.util.find_spec
    installed = {"llmup_lib": False}

    def find_spec(name, *args):
        if name == "llmup_lib":
            return real_find_spec(name) if installed["llmup_lib"] else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    url, ref = "https://github.com/someone/llmup", "v0.1.0"
    assert colab.colab_setup(url, ref) is True
    assert calls == [[sys.executable, "-m", "pip", "install", "-q",
                      "llmup @ git+https://github.com/someone/llmup@v0.1.0"]]
    assert __import__("os").environ["LLMUP_PROFILE"] == "gpu"
    installed["llmup_lib"] = True  # rerunning the cell after the install: nothing to do
    assert colab.colab_setup(url, ref) is True
    assert len(calls) == 1


def test_binder_builds_the_ci_torch_on_cpu_and_caps_threads():
    """binder/ pins the CPU build of the torch CI installs, and its start script is runnable."""
    import os
    import re

    ci_pin = re.search(r"torch==([\d.]+)", (ROOT / ".ci" / "run").read_text()).group(1)
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    assert f"torch=={ci_pin}+cpu" in binder  # +cpu: only the CPU index has it
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder
    for script in ("start", "postBuild"):
        path = ROOT / "binder" / script
        assert os.access(path, os.X_OK), f"binder/{script} must be executable"
        subprocess.run(["bash", "-n", str(path)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([str(ROOT / "binder" / "start"), "sh", "-c", "echo $OMP_NUM_THREADS"],
                          env=env, capture_output=True, text=True, check=True)
    assert 1 <= int(done.stdout) <= os.cpu_count()


def test_readme_badges_come_from_the_one_url():
    from pathlib import Path

    from llmup_lib.colab import badges_markdown

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert badges_markdown("00_start_here") in readme
