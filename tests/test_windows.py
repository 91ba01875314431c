"""llmup_lib imports, and measures memory, where the POSIX-only ``resource`` module is missing
(Windows). Its absence is simulated: ``sys.modules["resource"] = None`` makes ``import resource``
raise ImportError, as it does on Windows."""

import math
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import llmup_lib
from llmup_lib.core import memory

ROOT = Path(__file__).resolve().parent.parent

# Every submodule of llmup_lib, imported fresh in a process where `import resource` fails.
# psutil is imported first: its Linux backend needs `resource` (its Windows one does not), and
# hiding it from psutil too would test psutil on an impossible platform, not llmup_lib.
SCRIPT = """
import importlib, sys
import psutil
sys.modules["resource"] = None
names = sys.argv[1:]
for name in names:
    importlib.import_module("llmup_lib." + name)
from llmup_lib.core.memory import peak_memory_mb
print("imported", len(names), "peak", peak_memory_mb())
"""


def _submodules():
    """Every module of the package and its subpackages, as names under ``llmup_lib.``."""
    return sorted(m.name.removeprefix("llmup_lib.")
                  for m in pkgutil.walk_packages(llmup_lib.__path__, "llmup_lib.")
                  if not m.name.endswith("__main__") and ".data" not in m.name)


@pytest.mark.slow  # 21 s on 2 shared cores (2026-12-04)
def test_every_module_imports_without_resource():
    names = _submodules()
    assert {"core.evaluate", "methods.finetune", "core.models", "core.train"} <= set(names)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, *names], capture_output=True,
                            text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"imported {len(names)} peak" in result.stdout


def test_the_simulation_really_hides_resource(monkeypatch):
    """The check above can fail: with resource hidden, importing it raises."""
    monkeypatch.setitem(sys.modules, "resource", None)
    try:
        import resource  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("resource is still importable")


def test_peak_memory_without_resource_uses_psutil_or_nan(monkeypatch):
    import psutil  # noqa: F401  (loaded before resource is hidden, as in the subprocess above)

    monkeypatch.setitem(sys.modules, "resource", None)
    monkeypatch.setattr(memory, "PROC_STATUS", "/no/proc/on/windows")
    with_psutil = memory.peak_memory_mb()
    assert 10 < with_psutil < 100_000  # psutil is installed here (a jupyter dependency)
    monkeypatch.setitem(sys.modules, "psutil", None)
    assert math.isnan(memory.peak_memory_mb())  # unknown, never a made-up number
