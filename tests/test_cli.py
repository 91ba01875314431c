import pytest

from llmup_lib.__main__ import main
from llmup_lib.base import base_dir, load_base_model
from llmup_lib.profiles import get_profile


def test_info_prints_the_environment(capsys):
    main(["info"])
    out = capsys.readouterr().out
    assert "transformers" in out and "profile: cpu" in out


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_gpu_profile_caches_outside_the_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    assert base_dir(get_profile("gpu")) == tmp_path / "base" / "gpu"


def test_missing_shipped_base_names_the_rebuild_command(monkeypatch, tmp_path):
    import llmup_lib.base as B

    monkeypatch.setattr(B, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="build-base"):
        load_base_model(get_profile("cpu"))


def test_version_flag_and_no_stray_version_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("llmup ")
    main(["info"])
    assert "llmup 0" not in capsys.readouterr().out.splitlines()[-1]
