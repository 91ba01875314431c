"""Open the notebooks on Colab or Binder: badges, and the setup cell each notebook starts with.

The repository's address and the ref (tag or commit) that Colab installs are defined here once,
as ``REPO_URL`` and ``REF``; the badges, the Binder link and the Colab setup cell are all
generated from them (``tools/add_colab_cells.py`` writes them into the notebooks). Until the
project has a public remote both are obviously invalid placeholders (GitHub owners cannot
contain ``_``), and ``tools/add_colab_cells.py --check`` fails while they are.

On Colab a notebook opens alone, without the package, so its first code cell must work before
``llmup_lib`` exists: a few self-contained lines (:func:`setup_cell_source`) that, on Colab only,
``pip install`` the pinned ref (the wheel carries the tokenizer and base model in
``llmup_lib/data``), once, so rerunning the cell is harmless, then choose the ``gpu`` profile
when a GPU is present. Anywhere else the cell does nothing.
"""

from __future__ import annotations

import re

# The ONE place for the project's public repository and the ref Colab installs. PLACEHOLDERS: the
# project has no public remote yet; set both (REF: a tag or commit, e.g. "v0.1.0"), then rerun
# tools/add_colab_cells.py. Its --check fails while either is a placeholder.
REPO_URL = "https://github.com/__OWNER_PLACEHOLDER__/llmup"
REF = "__REF_PLACEHOLDER__"
PLACEHOLDER_MARK = "PLACEHOLDER__"
NOTEBOOKS = "notebooks"
BINDER_START = "00_start_here.ipynb"

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"

SETUP_TAG = "colab-setup"
BADGES_TAG = "colab-badges"


def placeholders(repo_url: str | None = None, ref: str | None = None) -> list[str]:
    """Which of ``REPO_URL`` and ``REF`` are still placeholders (empty when both are real)."""
    repo_url = REPO_URL if repo_url is None else repo_url
    ref = REF if ref is None else ref
    return [name for name, value in (("REPO_URL", repo_url), ("REF", ref))
            if PLACEHOLDER_MARK in value or not value.strip()]


def install_spec(repo_url: str | None = None, ref: str | None = None) -> str:
    """What the Colab cell gives pip: the package at the pinned ref."""
    return f"llmup @ git+{REPO_URL if repo_url is None else repo_url}@{REF if ref is None else ref}"


def github_repo(repo_url: str = REPO_URL) -> str:
    """``owner/name`` of a GitHub URL."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url)
    if not match:
        raise ValueError(f"REPO_URL {repo_url!r} is not a GitHub repository URL; write it as "
                         "https://github.com/<owner>/<name>.")
    return f"{match.group(1)}/{match.group(2)}"


def colab_url(notebook: str, repo_url: str | None = None, ref: str | None = None) -> str:
    """The link that opens ``notebooks/<notebook>`` of the repository, at ``REF``, on Colab."""
    return (f"https://colab.research.google.com/github/{github_repo(repo_url or REPO_URL)}/blob/"
            f"{ref or REF}/{NOTEBOOKS}/{_ipynb(notebook)}")


def binder_url(notebook: str = BINDER_START, repo_url: str | None = None,
               ref: str | None = None) -> str:
    """The link that builds the repository at ``REF`` on Binder and opens ``notebook``."""
    return (f"https://mybinder.org/v2/gh/{github_repo(repo_url or REPO_URL)}/{ref or REF}"
            f"?urlpath=lab/tree/{NOTEBOOKS}/{_ipynb(notebook)}")


def badges_markdown(notebook: str, repo_url: str | None = None, ref: str | None = None) -> str:
    """The badge line of a notebook: open it on Colab; open the suite on Binder (this notebook)."""
    return (f"[![Open In Colab]({COLAB_BADGE})]({colab_url(notebook, repo_url, ref)}) "
            f"[![Binder]({BINDER_BADGE})]({binder_url(notebook, repo_url, ref)})")


def setup_cell_source(repo_url: str | None = None, ref: str | None = None) -> str:
    """The self-contained first code cell of every notebook (see the module docstring)."""
    return f'''\
# On Colab: install llmup at its pinned ref (about a minute, once: rerunning is harmless) and
# use the GPU profile if there is a GPU. Anywhere else this cell does nothing.
import importlib
import importlib.util
import os
import subprocess
import sys

llmup_spec = "{install_spec(repo_url, ref)}"
if "google.colab" in sys.modules:
    if importlib.util.find_spec("llmup_lib") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", llmup_spec], check=True)
        importlib.invalidate_caches()  # importable now, without restarting the kernel
    import torch

    if torch.cuda.is_available():
        os.environ.setdefault("LLMUP_PROFILE", "gpu")'''


def colab_setup(repo_url: str | None = None, ref: str | None = None) -> bool:
    """Run the setup cell's code here; True when on Colab. Outside Colab it does nothing."""
    import sys

    exec(compile(setup_cell_source(repo_url, ref), "<colab-setup>", "exec"), {})
    return "google.colab" in sys.modules


def _ipynb(name: str) -> str:
    return name if name.endswith(".ipynb") else f"{name}.ipynb"
