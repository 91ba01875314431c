"""Run every notebook headless, one fresh kernel each, and print a summary table.

    python -m llmup_lib run-all                     # notebooks/ -> executed/
    python -m llmup_lib run-all --only 02,03 --profile cpu --timeout 600 --out /tmp/run
    python -m llmup_lib run-all --solutions         # teacher mode: exercises answered

The workshop teacher's check that the whole suite runs on the day's image: each notebook runs
top to bottom in its own kernel (started in the notebook's folder, as Jupyter does), the
executed copy is written to ``--out`` (failed ones too, with the traceback in place), and the
table gives each notebook's status (``ok`` or ``failed:`` and the first line of the error), wall
time, the kernel's peak memory and its key result. The exit code is 1 if any notebook failed.

The key result is the last line a notebook prints that starts with ``KEY RESULT:``, or else the
last line printed by the code under its "Checks" heading (``all checks passed …``). Each kernel
gets ``LLMUP_RESULTS_DIR`` (yours, or ``<out>/results``), so the headline numbers a notebook
records with ``llmup_lib.teaching.results.record`` are printed after the table, one line per notebook.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

from .store import write_text
from .teaching.results import ENV as RESULTS_ENV
from .teaching.results import collect as collect_results
from .teaching.results import format_results

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KEY_PREFIX = "KEY RESULT:"
_CHECKS_HEADING = re.compile(r"^\s*#+\s.*\bchecks?\b", re.IGNORECASE)


@dataclass
class NotebookRun:
    name: str
    status: str  # "ok" or "failed: <first line of the error>"
    seconds: float
    peak_mb: float | None  # peak RSS of the kernel process; None where it cannot be read
    key_result: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def find_notebooks(folder: str | os.PathLike = NOTEBOOKS_DIR, only: str | None = None
                   ) -> list[Path]:
    """The ``NN_*.ipynb`` notebooks of ``folder`` in order; ``only="02,03"`` keeps those whose
    number (or full name) is listed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No notebook folder at {str(folder)!r}; pass --notebooks DIR.")
    books = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        wanted = {w.strip().removesuffix(".ipynb") for w in only.split(",") if w.strip()}
        books = [b for b in books if b.stem in wanted or b.stem.split("_")[0] in wanted]
        if not books:
            raise ValueError(f"--only {only!r} matches no notebook in {str(folder)!r}; use the "
                             "numbers or names of the notebooks there, e.g. --only 02,03.")
    return books


def key_result(nb) -> str:
    """The one-line result to show in the table (see the module docstring); '' if none."""
    keyed, checks, in_checks = "", "", False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            if first.lstrip().startswith("#"):
                in_checks = bool(_CHECKS_HEADING.match(first))
            continue
        if cell.cell_type != "code":
            continue
        for line in _stdout_lines(cell):
            if line.startswith(KEY_PREFIX):
                keyed = line[len(KEY_PREFIX):].strip()
            elif in_checks:
                checks = line
    return keyed or checks


def _stdout_lines(cell) -> list[str]:
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _first_error_line(err: Exception) -> str:
    """``ValueError: boom`` from nbclient's CellExecutionError (its ename/evalue), else the
    exception's own first line."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        text = f"{ename}: {evalue}" if evalue else str(ename)
    else:
        text = f"{type(err).__name__}: {err}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


class _PeakRSS:
    """Peak resident memory of one process: the kernel's ``VmHWM`` (Linux's own high-water
    mark, exact), or, without /proc, the largest RSS psutil sees while sampling every 0.2 s."""

    def __init__(self, pid: int | None):
        self.pid, self.peak_kb, self._stop = pid, None, threading.Event()
        self._proc = Path(f"/proc/{pid}/status") if pid else None
        self._thread = None
        if pid and not self._proc.exists():
            try:
                import psutil

                self._ps = psutil.Process(pid)
                self._thread = threading.Thread(target=self._sample, daemon=True)
                self._thread.start()
            except Exception:  # no psutil, or the process is gone: no memory column
                pass

    def _sample(self):
        while not self._stop.wait(0.2):
            try:
                self.peak_kb = max(self.peak_kb or 0, self._ps.memory_info().rss // 1024)
            except Exception:
                return

    def read(self) -> float | None:
        """Peak RSS in MB so far; call before the kernel shuts down."""
        if self._proc is not None and self._proc.exists():
            try:
                for line in self._proc.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb or 0, int(line.split()[1]))
            except OSError:
                pass
        self._stop.set()
        return None if self.peak_kb is None else self.peak_kb / 1024


def run_notebook(path: Path, out_dir: Path, timeout: float = 1800, profile: str | None = None,
                 progress=None, results_dir: Path | None = None,
                 solutions: bool = False) -> NotebookRun:
    """Execute ``path`` in a fresh kernel, write the executed copy to ``out_dir``; never raises
    for a failing notebook (the failure is the returned status).

    ``timeout`` is the wall-clock limit of the whole notebook in seconds; ``results_dir``, when
    given, is the kernel's ``LLMUP_RESULTS_DIR`` (this notebook's old results file is removed
    first, so the folder holds only what this run recorded). ``solutions=True`` is the
    teacher's run: every unanswered exercise cell is replaced by its reference solution first
    (``exercises.grader.fill_solutions``), so each check must pass; the notebook file is not changed.
    """
    import nbformat
    from nbclient import NotebookClient

    if solutions:
        from .exercises.grader import fill_solutions

        nb = fill_solutions(path)
    else:
        nb = nbformat.read(str(path), as_version=4)
    env = dict(os.environ)
    if profile:
        env["LLMUP_PROFILE"] = profile
    if results_dir is not None:
        env[RESULTS_ENV] = str(Path(results_dir).resolve())
        (Path(results_dir) / f"{path.stem}.json").unlink(missing_ok=True)
    client = NotebookClient(nb, timeout=int(timeout), kernel_name=_kernel_name(nb),
                            resources={"metadata": {"path": str(path.parent)}})
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    status, peak = "ok", None
    t0 = time.perf_counter()
    deadline = t0 + timeout
    try:
        client.reset_execution_trackers()
        with client.setup_kernel(env=env, cwd=str(path.parent)):
            meter = _PeakRSS(_kernel_pid(client))
            for channel in (client.kc.shell_channel, client.kc.iopub_channel):
                channel.get_msg = _sliced(channel.get_msg)
            try:
                info = client.wait_for_reply(client.kc.kernel_info())
                if info is not None and "language_info" in info["content"]:
                    nb.metadata["language_info"] = info["content"]["language_info"]
                for k, index in enumerate(code_cells):
                    if progress is not None:
                        progress.set_postfix_str(f"{path.stem} cell {k + 1}/{len(code_cells)}")
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        raise TimeoutError(f"notebook timeout: {timeout:g} s reached before "
                                           f"cell {k + 1}/{len(code_cells)}")
                    client.timeout = max(1, int(remaining))  # per cell in nbclient: the rest
                    client.execute_cell(nb.cells[index], index,
                                        execution_count=client.code_cells_executed + 1)
                client.set_widgets_metadata()
            finally:
                peak = meter.read()
    except Exception as err:  # CellExecutionError, CellTimeoutError, DeadKernelError, …
        status = "failed: " + _describe_failure(err, timeout)
    seconds = time.perf_counter() - t0
    text = nbformat.writes(nb)  # what nbformat.write puts in a file, written atomically
    write_text(out_dir / path.name, text if text.endswith("\n") else text + "\n")
    return NotebookRun(path.stem, status, seconds, peak, key_result(nb))


def _describe_failure(err: Exception, timeout: float) -> str:
    name = type(err).__name__
    if name == "CellTimeoutError":
        return f"timeout: the notebook ran past {timeout:g} s"
    if name == "DeadKernelError":
        return "the kernel died (out of memory?)"
    return _first_error_line(err)


def _sliced(get_msg, slice_s: float = 0.5):
    """``get_msg`` that polls in ``slice_s`` slices up to the caller's timeout.

    Why: with ipywidgets, nbclient sometimes does not see a cell's ``execute_reply`` until the
    whole wait times out (jupyter/nbclient#312, open): a run-all stalled for exactly its cell
    timeout after a widget cell, and a stress notebook of 40 widget cells stalled twice for
    120 s out of 244 s. A fresh poll finds the waiting message at once: 5-6 s in all, measured.
    """
    async def get(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = slice_s if deadline is None else max(0.0, min(slice_s,
                                                                 deadline - time.monotonic()))
            try:
                return await get_msg(timeout=wait)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
    return get


def _kernel_name(nb) -> str:
    return nb.metadata.get("kernelspec", {}).get("name") or "python3"


def _kernel_pid(client) -> int | None:
    provisioner = getattr(client.km, "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    if pid is None:
        process = getattr(provisioner, "process", None)
        pid = getattr(process, "pid", None)
    return pid


def run_all(notebooks: list[Path], out_dir: str | os.PathLike = "executed", timeout: float = 1800,
            profile: str | None = None, results_dir: Path | None = None,
            solutions: bool = False) -> list[NotebookRun]:
    """Run ``notebooks`` in order with a progress bar; returns one :class:`NotebookRun` each."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    runs = []
    with tqdm(notebooks, desc="notebooks", unit="nb") as bar:
        for path in bar:
            run = run_notebook(path, out_dir, timeout=timeout, profile=profile, progress=bar,
                               results_dir=results_dir, solutions=solutions)
            runs.append(run)
            bar.write(f"{run.name}: {run.status} ({run.seconds:.1f} s)")
    return runs


def format_table(runs: list[NotebookRun], width: int = 70) -> str:
    """The summary table: notebook, status, wall (s), peak RSS (MB), key result."""
    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    rows = [("notebook", "status", "wall (s)", "peak RSS (MB)", "key result")]
    for r in runs:
        rows.append((r.name, cut(r.status), f"{r.seconds:.1f}",
                     "n/a" if r.peak_mb is None else f"{r.peak_mb:.0f}", cut(r.key_result or "—")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                 row[3].rjust(widths[3]), row[4]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len("key result"))
    failed = sum(not r.ok for r in runs)
    total = sum(r.seconds for r in runs)
    lines.append(f"{len(runs) - failed}/{len(runs)} ok, {failed} failed, {total:.0f} s in all")
    return "\n".join(lines)


def main(args) -> int:
    """``python -m llmup_lib run-all``; returns the exit code (1 if any notebook failed)."""
    try:
        import nbclient  # noqa: F401  (with jupyterlab/nbconvert; see requirements.txt)
    except ImportError:
        raise ValueError("run-all needs nbclient, which runs the notebooks' kernels; "
                         "pip install nbclient (or pip install -r requirements.txt).") from None
    books = find_notebooks(args.notebooks or NOTEBOOKS_DIR, args.only)
    results = Path(os.environ.get(RESULTS_ENV) or Path(args.out) / "results")
    runs = run_all(books, args.out, timeout=args.timeout, profile=args.profile,
                   results_dir=results, solutions=args.solutions)
    print(format_table(runs))
    recorded = collect_results(results)
    if recorded:
        print(f"\nrecorded results ({results}):")
        print(format_results(recorded))
    print(f"executed notebooks in {Path(args.out).resolve()}")
    return 0 if all(r.ok for r in runs) else 1
