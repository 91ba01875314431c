"""A real JupyterLab in a real (headless) browser: widgets render and plots appear.

nbval runs the notebooks in a kernel, which never shows whether a widget *renders*: a missing or
mismatched front-end extension only shows in a browser, as "Error displaying widget". This test
starts ``jupyter lab`` on localhost, opens a small notebook in Debian's Chromium driven by
Playwright, runs all cells from the Run menu, and checks that the slider rendered, that its
output reached the page through the kernel, that moving it re-runs the function, and that a
matplotlib image appeared.

It uses the system browser (``/usr/bin/chromium``); ``playwright install`` is never needed.
Outside CI the test skips when the browser or Playwright is missing; in CI (``CI`` set, as
``.ci/run`` does) it fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from llmup_lib.real import in_ci

CHROMIUM = Path(os.environ.get("LLMUP_CHROMIUM", "/usr/bin/chromium"))
IN_CI = in_ci()  # the suite's own reading of CI (llmup_lib.real)


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return (f"no browser at {CHROMIUM}; install Debian's chromium "
                "(apt-get install chromium) or set LLMUP_CHROMIUM")
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed; pip install playwright (no `playwright install`)"
    return None


@pytest.fixture(scope="module")
def browser_ready():
    reason = _missing()
    if reason and IN_CI:
        pytest.fail(f"the browser test must run in CI, but {reason}")
    if reason:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Browser check"),
        # the suite's explorers are ipywidgets.interactive around a plain function: the same here
        nbformat.v4.new_code_cell(
            "import ipywidgets as w\n\n"
            "def show(size):\n"
            "    print(f'size squared is {size * size}')\n\n"
            "w.interactive(show, size=w.IntSlider(value=7, min=1, max=10, description='size'))"),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\n"
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(3, 2))\n"
            "ax.plot([1, 2, 3], [1, 4, 9])\n"
            "plt.show()"),
    ]
    nbformat.write(nb, str(path))


@pytest.fixture
def lab(tmp_path, browser_ready):
    """A JupyterLab server on a free localhost port, rooted at a folder with the notebook."""
    root = tmp_path / "root"
    root.mkdir()
    _write_notebook(root / "check.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not answer within 60 s")
                time.sleep(0.3)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_widget_and_plot_render_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token = lab
    shot = tmp_path / "jupyterlab.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            # root in a container has no user namespace sandbox; /dev/shm is often tiny
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(45_000)
            page.goto(f"{base}/lab/tree/check.ipynb?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
            # Wait for a live kernel: "Run All" sent while the status bar still reads
            # "No Kernel | Initializing" is silently dropped.
            page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").wait_for()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()  # Run All Cells
            try:
                slider = page.locator(".jp-OutputArea-output .widget-slider")
                slider.first.wait_for(state="visible")
                # the interactive output came back from the kernel through the widget comm
                page.get_by_text("size squared is 49").wait_for()
                # and the widget is live: one step right re-runs the function in the kernel
                slider.first.locator(".noUi-handle").first.focus()
                page.keyboard.press("ArrowRight")
                page.get_by_text("size squared is 64").wait_for()
                plot = page.locator(".jp-OutputArea-output img")
                plot.first.wait_for(state="visible")
                width = plot.first.evaluate("img => img.naturalWidth")
                body = page.inner_text("body")
            finally:  # the screenshot, pass or fail, to see what the browser showed
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
        finally:
            browser.close()
    assert "Error displaying widget" not in body
    assert "Model not found" not in body
    assert width > 100  # a real rendered figure, not a broken image
    assert shot.stat().st_size > 10_000
