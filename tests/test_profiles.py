import pytest

from llmup_lib.core.profiles import PROFILES, get_profile


def test_default_is_cpu(monkeypatch):
    monkeypatch.delenv("LLMUP_PROFILE", raising=False)
    assert get_profile().name == "cpu"


def test_env_var_and_argument(monkeypatch):
    monkeypatch.setenv("LLMUP_PROFILE", "gpu")
    assert get_profile().name == "gpu"
    assert get_profile("cpu").name == "cpu"  # an argument beats the environment


def test_overrides():
    assert get_profile("cpu", base_steps=7).base_steps == 7
    assert PROFILES["cpu"].base_steps != 7  # the registry is untouched


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown profile 'tpu'.*'cpu', 'gpu'"):
        get_profile("tpu")


def test_cpu_profile_runs_on_cpu():
    assert str(get_profile("cpu").torch_device()) == "cpu"
