"""`pip install .` (not editable) gives a working package: the wheel carries llmup_lib/data
(tokenizer, shipped base model, sweep tables), and the installed copy loads them from a
folder outside the checkout. No download: the wheel is built without build isolation and
installed with --no-deps into a folder put first on the path of this same interpreter, whose
site-packages provide torch, transformers and the rest."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmup_lib.store import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import json
import llmup_lib
from llmup_lib.core.base import base_dir
from llmup_lib.core.models import load_model
from llmup_lib.core.profiles import get_profile
from llmup_lib.experiments.sweep import shipped_table
from llmup_lib.experiments.capacity import load_table as load_capacity_table
from llmup_lib.experiments.extraction import load_base, load_table
from llmup_lib.store import DATA_DIR
from llmup_lib.core.tokenizer import load_tokenizer
tok = load_tokenizer()
load_table()  # notebook 04's extraction table, and a base it tunes live (loaded, not retrained)
load_capacity_table()  # notebook 05's knowledge-capacity table
load_base("augmented", tok, log=lambda line: (_ for _ in ()).throw(SystemExit(line)))
model = load_model(base_dir(get_profile("cpu")))
print(json.dumps({"package": llmup_lib.__file__, "data": str(DATA_DIR), "vocab": len(tok),
                  "model_vocab": model.config.vocab_size,
                  "params": sum(p.numel() for p in model.parameters()),
                  "table": str(shipped_table("family_tuned"))}))
"""


def test_data_dir_is_inside_the_package():
    assert DATA_DIR == ROOT / "llmup_lib" / "data"
    assert (DATA_DIR / "tokenizer" / "tokenizer.json").exists()


@pytest.mark.slow
def test_a_non_editable_install_loads_the_shipped_tokenizer_and_base_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_NO_INDEX"] = "1"  # nothing may be downloaded
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, env=env, cwd=tmp_path, timeout=300)
    (wheel,) = wheels.glob("llmup-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("llmup_lib/data/tokenizer/tokenizer.json",
                    "llmup_lib/data/base/cpu/model.safetensors",
                    "llmup_lib/data/base/cpu/config.json",
                    "llmup_lib/data/scaling/cpu_family_tuned.json",
                    "llmup_lib/data/zipf/cpu.json",
                    "llmup_lib/data/base/cpu_larger/model.safetensors",
                    "llmup_lib/data/tuning/cpu_domain.json",
                    "llmup_lib/data/tuning/cpu_distill.json",
                    "llmup_lib/data/extraction/cpu.json",
                    "llmup_lib/data/capacity/cpu.json",
                    "llmup_lib/data/extraction/cpu_single/model.safetensors",
                    "llmup_lib/data/extraction/cpu_augmented/extraction_base.json"):
        assert shipped in names, f"{shipped} is not in the wheel"
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not any("__pycache__" in n for n in names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(wheel)], check=True, env=env, timeout=300)
    env["PYTHONPATH"] = str(site)  # before site-packages, where an editable llmup may live
    away = tmp_path / "elsewhere"
    away.mkdir()
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env,
                         cwd=away, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["package"].startswith(str(site))  # the installed copy, not the checkout
    assert info["data"] == str(site / "llmup_lib" / "data")
    assert info["vocab"] == info["model_vocab"] > 500  # the shipped BPE and its base model
    assert info["params"] > 500_000
    assert info["table"].startswith(str(site))


def test_one_source_of_dependencies():
    """requirements.txt installs the package with its extras; pyproject lists everything."""
    import tomllib

    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["-e .[notebooks,test,real]"]  # real: gguf, so 08 reads SmolLM2 offline
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    names = {k: {d.split(">")[0].split("=")[0].split("[")[0] for d in v} for k, v in extras.items()}
    assert {"jupyterlab", "ipykernel", "nbclient"} <= names["notebooks"]
    assert {"pytest", "nbval", "playwright"} <= names["test"]
    assert names["real"] == {"gguf"}
    assert {"torch", "transformers", "peft"} <= {d.split(">")[0].split("=")[0].split("<")[0]
                                                   for d in project["project"]["dependencies"]}
    # the SPDX licence string needs setuptools >= 77, and its file ships
    assert project["project"]["license"] == "MIT" and (ROOT / "LICENSE").exists()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


def _lowest_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lowest_constraints",
                                                  ROOT / "tools" / "lowest_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lowest_constraints_file_matches_pyproject():
    """constraints/lowest.txt (what .ci/run's lowest stage installs) never drifts from pyproject."""
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "lowest_constraints.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lowest_constraints_pin_each_lower_bound_and_check_catches_drift(tmp_path, monkeypatch):
    tool = _lowest_tool()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["torch>=2.13", "numpy",\n'
                         '  "peft >= 0.18, <1", "tqdm"]\n'
                         '[project.optional-dependencies]\nt = ["pytest[testing]>=8"]\n')
    floors, unbounded = tool.lower_bounds(pyproject)
    assert floors == {"torch": "2.13", "peft": "0.18", "pytest": "8"}
    assert unbounded == ["numpy", "tqdm"]
    text = tool.render(pyproject)
    assert "torch==2.13\n" in text and "# No lower bound, so no pin: numpy, tqdm" in text
    drifted = tmp_path / "lowest.txt"
    drifted.write_text(tool.render().replace("torch==", "torch==1"))
    monkeypatch.setattr(tool, "OUT", drifted)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert tool.main(["--check"]) == 1
    drifted.write_text(tool.render())
    assert tool.main(["--check"]) == 0
