"""LoRA targets: transformers' Conv1D layers (GPT-2), one name given as a string, and regexes.

The GPT-2 fixture is a 2-layer, 32-wide ``GPT2LMHeadModel`` built from a config and written with
``save_pretrained`` in ``tmp_path`` (the files a Hub download of ``gpt2`` leaves, in miniature):
its attention and MLP are ``Conv1D`` layers, whose weight is stored ``d_in × d_out``, so peft
needs ``fan_in_fan_out=True`` for them.
"""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from llmup_lib.methods.lora import (linear_module_names, load_adapter, lora_config, lora_model, lora_target_modules, merge_adapter, save_adapter)
from llmup_lib.methods.finetune import trainable_parameters
from llmup_lib.core.models import build_model, load_model

D, LAYERS, VOCAB = 32, 2, 64


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-gpt2")
    config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=D, n_layer=LAYERS, n_head=4)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.fixture()
def gpt2(gpt2_dir):
    return load_model(gpt2_dir)


@pytest.fixture()
def pico(char_tok):
    return build_model("pico", char_tok, 32, seed=0)


def _ids():
    return torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))


def _perturb_lora_b(peft_model):
    torch.manual_seed(2)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)


def test_gpt2_conv1d_layers_are_valid_targets(gpt2):
    assert type(gpt2).__name__ == "GPT2LMHeadModel"
    assert isinstance(gpt2.transformer.h[0].attn.c_attn, Conv1D)
    assert {"c_attn", "c_proj", "c_fc"} <= set(linear_module_names(gpt2))


def test_lora_on_gpt2_c_attn(gpt2):
    adapted = lora_model(gpt2, rank=2, targets=["c_attn"])
    # fan_in_fan_out is set for the user: Conv1D stores W as d_in x d_out
    assert adapted.peft_config["default"].fan_in_fan_out is True
    # per layer: A is r x d_in, B is d_out x r, with d_out = 3·d (q, k, v fused)
    assert trainable_parameters(adapted)["trainable"] == LAYERS * 2 * (D + 3 * D)
    x = _ids()
    with torch.no_grad():  # B = 0: the adapted model starts as the base model
        assert torch.allclose(adapted(x).logits, gpt2(x).logits, atol=1e-6)
    adapted(x, labels=x).loss.backward()
    grads = {n: p.grad for n, p in adapted.named_parameters() if p.requires_grad}
    assert grads and all("lora_" in n for n in grads)
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


def test_gpt2_adapter_merges_and_reloads_to_the_same_logits(gpt2, tmp_path):
    adapted = lora_model(gpt2, rank=4, targets="c_attn")
    _perturb_lora_b(adapted)
    x = _ids()
    with torch.no_grad():
        adapted_logits = adapted(x).logits
        assert not torch.allclose(adapted_logits, gpt2(x).logits, atol=1e-3)  # B moved the output
        # a transposed update (fan_in_fan_out wrong) would not even have c_attn's shape
        assert torch.allclose(merge_adapter(adapted)(x).logits, adapted_logits, atol=1e-5)
        save_adapter(adapted, tmp_path / "adapter")
        reloaded = load_adapter(load_model(gpt2.config._name_or_path), tmp_path / "adapter")
        assert torch.allclose(reloaded(x).logits, adapted_logits, atol=1e-6)


def test_all_linear_on_gpt2_adapts_every_conv1d_but_not_the_head(gpt2):
    adapted = lora_model(gpt2, rank=1, targets="all-linear")
    assert adapted.peft_config["default"].fan_in_fan_out is True
    wrapped = {n.split(".")[-1] for n, m in adapted.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"c_attn", "c_proj", "c_fc"}


def test_one_name_as_a_string_is_one_target_not_its_letters(pico, gpt2):
    # before: "q_proj" was split into ['q', '_', 'p', ...] and refused
    assert lora_config(targets="q_proj").target_modules == {"q_proj"}
    one = trainable_parameters(lora_model(pico, rank=2, targets="q_proj"))["trainable"]
    listed = trainable_parameters(lora_model(pico, rank=2, targets=["q_proj"]))["trainable"]
    assert one == listed == pico.config.num_hidden_layers * 2 * (2 * pico.config.hidden_size)
    assert (trainable_parameters(lora_model(gpt2, rank=2, targets="c_attn"))["trainable"]
            == LAYERS * 2 * (D + 3 * D))


def test_a_regex_string_goes_to_peft_as_a_regex(pico):
    regex = r".*\.(q_proj|v_proj)"
    adapted = lora_model(pico, rank=2, targets=regex)
    assert adapted.peft_config["default"].target_modules == regex
    listed = lora_model(pico, rank=2, targets=["q_proj", "v_proj"])
    assert (trainable_parameters(adapted)["trainable"]
            == trainable_parameters(listed)["trainable"] > 0)
    assert adapted.peft_config["default"].fan_in_fan_out is False  # Linear layers


def test_lora_target_modules_matches_like_peft(pico, gpt2):
    paths = lora_target_modules(pico, ["q_proj"])
    assert sorted(paths) == [f"model.layers.{i}.self_attn.q_proj" for i in range(2)]
    assert sorted(lora_target_modules(pico, r"model\.layers\.0\..*_proj")) == sorted(
        n for n, _ in pico.named_modules() if n.startswith("model.layers.0.") and n.endswith("_proj"))
    assert "lm_head" not in {n.split(".")[-1] for n in lora_target_modules(pico, "all-linear")}
    assert all(isinstance(m, Conv1D) for m in lora_target_modules(gpt2, "c_fc").values())
    assert lora_target_modules(pico, ["c_attn"]) == {}


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


@pytest.mark.parametrize("targets, needles", [
    (r".*\.nothing_here", [r"'.*\\.nothing_here'", "matches no module", "'q_proj'"]),
    ("q_proj(", ["'q_proj('", "not a valid regular expression"]),
    (["c_attn"], ["['c_attn']", "match no module", "'q_proj'"]),
], ids=["regex-matches-nothing", "regex-invalid", "conv1d-name-on-llama"])
def test_bad_targets_get_one_clear_sentence(pico, targets, needles):
    with pytest.raises(ValueError) as err:
        lora_model(pico, rank=2, targets=targets)
    message = str(err.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert _one_sentence(message), message
