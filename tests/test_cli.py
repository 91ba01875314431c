import pytest

from llmup_lib.__main__ import main
from llmup_lib.core.base import base_dir, load_base_model
from llmup_lib.core.profiles import get_profile


def test_info_prints_the_environment(capsys):
    main(["info"])
    out = capsys.readouterr().out
    assert "transformers" in out and "profile: cpu" in out


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_experiments_are_one_verb_and_the_old_verbs_are_gone(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["experiment", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "{tune,sweep,capacity,extraction,zipf}" in out
    for old in ("tune", "sweep", "capacity", "extraction", "zipf"):
        with pytest.raises(SystemExit) as stop:
            main([old])
        assert stop.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["tune", "--profile", "tpu"], "Unknown profile 'tpu'"),
    (["tune", "--grid", "lora=1e-2"], "Unknown method 'lora'"),
    (["tune", "--task", "pretrain"], "argument --task: invalid choice: 'pretrain'"),
    (["tune", "--seeds", "0,x"], "--seeds '0,x' must be comma-separated whole numbers"),
    (["sweep", "--profile", "tpu"], "Unknown profile 'tpu'"),
    (["capacity", "--sizes", "giant"], "Unknown size 'giant'"),
    (["capacity", "--workers", "x"], "argument --workers: invalid int value: 'x'"),
    (["extraction", "--arms", "bioS"], "Unknown extraction arm 'bioS'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_a_bad_experiment_argument_is_one_sentence_and_exit_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["experiment", *argv, *(["--out", str(tmp_path / "t.json")] if len(argv) > 1
                                      else [])])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_gpu_profile_caches_outside_the_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    path = base_dir(get_profile("gpu"))
    assert path.parent == tmp_path / "base" and path.name.startswith("gpu-")


@pytest.mark.slow  # 6.2 s on 2 shared cores (2026-12-04)
def test_caches_are_keyed_by_recipe_not_by_profile_name(monkeypatch, tmp_path):
    """A changed profile value gets a model of its own: the 'cpu' profile with a 256-token
    context must not load the shipped 128-token base model (it trains its own, cached)."""
    import llmup_lib.core.base as B
    from llmup_lib.tasks.domain import domain_model_dir
    from llmup_lib.core.tokenizer import load_tokenizer

    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    tok = load_tokenizer()
    shipped = base_dir(get_profile("cpu"))
    assert shipped == B.DATA_DIR / "base" / "cpu"
    assert base_dir(get_profile("cpu", device="cuda")) == shipped  # same recipe, other chip
    longer = get_profile("cpu", context=256, base_steps=2, n_general=40, n_val=8)
    assert base_dir(longer).parent == tmp_path / "base"
    assert B.base_recipe_key(longer, tok) != B.base_recipe_key(get_profile("cpu"), tok)
    model = load_base_model(longer, progress=False)
    assert model.config.max_position_embeddings == 256
    assert (base_dir(longer) / "config.json").exists()
    assert domain_model_dir(get_profile("cpu"), tok) != domain_model_dir(
        get_profile("cpu", n_domain=100), tok)


def test_shipped_base_of_another_recipe_is_refused(monkeypatch):
    """The shipped model records its recipe key; a changed world (or tokenizer) no longer
    matches it, and loading it says how to rebuild instead of silently using it."""
    import llmup_lib.core.base as B

    monkeypatch.setattr(B, "WORLD_VERSION", 99)
    with pytest.raises(ValueError, match="built with another recipe.*build-base"):
        load_base_model(get_profile("cpu"))


def test_missing_shipped_base_names_the_rebuild_command(monkeypatch, tmp_path):
    import llmup_lib.core.base as B

    monkeypatch.setattr(B, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="build-base"):
        load_base_model(get_profile("cpu"))


def test_version_flag_and_no_stray_version_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("llmup ")
    main(["info"])
    assert "llmup 0" not in capsys.readouterr().out.splitlines()[-1]


def test_the_larger_pretrained_model_is_shipped_as_its_own_recipe():
    """Notebook 07's scaling option: the LARGER recipe lives in data/base/cpu_larger (float16 on
    disk, float32 in memory), is refused for any other recipe, and is better pretrained than the
    base model on the same validation stories."""
    import torch

    import llmup_lib.core.base as B

    larger = B.larger_base_profile(get_profile("cpu"))
    assert base_dir(larger) == B.DATA_DIR / "base" / "cpu_larger"
    assert base_dir(get_profile("cpu", base_size=larger.base_size)).parent != B.DATA_DIR / "base"
    model = load_base_model(larger, progress=False)
    assert next(model.parameters()).dtype == torch.float32
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 192
    recorded = B.shipped_metrics(larger)
    assert recorded["recipe_key"] == B.base_recipe_key(larger)
    assert recorded["val_loss"] < B.shipped_metrics(get_profile("cpu"))["val_loss"] - 0.03
    weights = (base_dir(larger) / "model.safetensors").stat().st_size
    assert weights < 2.1 * model.num_parameters()  # two bytes a weight: float16


@pytest.mark.parametrize("argv", [["build-base", "--profile", "nope"],
                                  ["run-all", "--profile", "nope"],
                                  ["experiment", "tune", "--profile", "nope"],
                                  ["experiment", "sweep", "--profile", "nope"]])
def test_every_verb_refuses_a_bad_profile_in_one_sentence(argv, capsys):
    """No traceback: the verb exits with one line naming the profile and the valid ones."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    said = str(stop.value.code) if not isinstance(stop.value.code, int) else capsys.readouterr().err
    assert stop.value.code != 0 and "'nope'" in said and "'cpu'" in said
    assert "Traceback" not in said and len(said.strip().splitlines()) == 1
