"""Open the notebooks on Colab or Binder: badges, and the setup cell each notebook starts with.

The repository's address is defined here once, as ``REPO_URL``; the badges, the Binder link and
the Colab setup cell are all generated from it (``tools/add_colab_cells.py`` writes them into the
notebooks).

On Colab a notebook opens alone, without the package or its ``data/`` folder, so its first code
cell must work before ``llmup_lib`` exists: it is a few self-contained lines
(:func:`setup_cell_source`) that, on Colab only, clone the repository, install it in editable
mode and put it on ``sys.path`` (a plain ``pip install git+…`` would not do: the shipped
tokenizer and base model live in ``data/`` beside the package, not inside it), then choose the
``gpu`` profile when a GPU is present. Anywhere else the cell does nothing.
"""

from __future__ import annotations

import re

# The project's public repository. PLACEHOLDER: the project has no public remote yet; change this
# one line when it gets one, then rerun tools/add_colab_cells.py.
REPO_URL = "https://github.com/llmup/llmup"
BRANCH = "main"
NOTEBOOKS = "notebooks"
BINDER_START = "00_start_here.ipynb"
CLONE_DIR = "/content/llmup"  # Colab's working folder is /content

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"

SETUP_TAG = "colab-setup"
BADGES_TAG = "colab-badges"


def github_repo(repo_url: str = REPO_URL) -> str:
    """``owner/name`` of a GitHub URL."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url)
    if not match:
        raise ValueError(f"REPO_URL {repo_url!r} is not a GitHub repository URL; write it as "
                         "https://github.com/<owner>/<name>.")
    return f"{match.group(1)}/{match.group(2)}"


def colab_url(notebook: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The link that opens ``notebooks/<notebook>`` of the repository on Colab."""
    return (f"https://colab.research.google.com/github/{github_repo(repo_url)}/blob/{branch}/"
            f"{NOTEBOOKS}/{_ipynb(notebook)}")


def binder_url(notebook: str = BINDER_START, repo_url: str = REPO_URL) -> str:
    """The link that builds the repository on Binder and opens JupyterLab on ``notebook``."""
    return (f"https://mybinder.org/v2/gh/{github_repo(repo_url)}/HEAD"
            f"?urlpath=lab/tree/{NOTEBOOKS}/{_ipynb(notebook)}")


def badges_markdown(notebook: str, repo_url: str = REPO_URL) -> str:
    """The badge line of a notebook: open it on Colab; open the suite on Binder (this notebook)."""
    return (f"[![Open In Colab]({COLAB_BADGE})]({colab_url(notebook, repo_url)}) "
            f"[![Binder]({BINDER_BADGE})]({binder_url(notebook, repo_url)})")


def setup_cell_source(repo_url: str = REPO_URL, clone_dir: str = CLONE_DIR) -> str:
    """The self-contained first code cell of every notebook (see the module docstring)."""
    return f'''\
# On Colab: fetch and install llmup (about a minute) and use the GPU profile if there is a GPU.
# Anywhere else this cell does nothing.
import os
import subprocess
import sys

llmup_repo, llmup_dir = "{repo_url}", "{clone_dir}"
if "google.colab" in sys.modules:
    if not os.path.isdir(llmup_dir):
        subprocess.run(["git", "clone", "--depth", "1", llmup_repo, llmup_dir], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", llmup_dir], check=True)
    sys.path.insert(0, llmup_dir)  # importable now, without restarting the kernel
    import torch

    if torch.cuda.is_available():
        os.environ.setdefault("LLMUP_PROFILE", "gpu")'''


def colab_setup(repo_url: str = REPO_URL, clone_dir: str = CLONE_DIR) -> bool:
    """Run the setup cell's code here; True when on Colab. Outside Colab it does nothing."""
    import sys

    exec(compile(setup_cell_source(repo_url, clone_dir), "<colab-setup>", "exec"), {})
    return "google.colab" in sys.modules


def _ipynb(name: str) -> str:
    return name if name.endswith(".ipynb") else f"{name}.ipynb"
