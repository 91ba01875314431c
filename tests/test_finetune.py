import json

import pytest
import torch

from llmup_lib.core.memory import adamw_state_estimate, file_size_bytes
from llmup_lib.core.train import measured_optimizer_bytes
from llmup_lib.tasks.instructions import chat_prompt, instruction_rows
from llmup_lib.methods.finetune import (freeze_except, full_finetune_model, reinit_untrained_tokens, trainable_parameters, untrained_token_ids)
from llmup_lib.methods.lora import (linear_module_names, load_adapter, lora_cost, lora_model, lora_update, merge_adapter, save_adapter)
from llmup_lib.core.models import build_model
from llmup_lib.core.tokenizer import load_tokenizer
from llmup_lib.core.train import TrainConfig, train


@pytest.fixture()
def pico(char_tok):
    return build_model("pico", char_tok, 32, seed=0)


def test_full_finetune_copies_and_trains_everything(pico):
    for p in pico.parameters():
        p.requires_grad_(False)
    model = full_finetune_model(pico)
    assert trainable_parameters(model)["percent"] == 100
    assert trainable_parameters(pico)["trainable"] == 0  # the original is untouched


def test_freeze_except_trains_only_chosen_layer(pico):
    model = freeze_except(pico, [-1], train_norm=False)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("model.layers.1.") for n in names)
    with pytest.raises(ValueError, match="Layer 5 does not exist"):
        freeze_except(pico, [5])


def test_lora_starts_at_the_base_model_and_trains_little(pico, tiny_blocks):
    adapted = lora_model(pico, rank=2, targets=["q_proj", "v_proj"])
    x = tiny_blocks[0][:2, :-1]
    with torch.no_grad():
        assert torch.allclose(adapted(input_ids=x).logits, pico(input_ids=x).logits)
    counts = trainable_parameters(adapted)
    d, layers = pico.config.hidden_size, pico.config.num_hidden_layers
    assert counts["trainable"] == layers * 2 * 2 * (d + d)  # two targets, r·(d_in + d_out)
    assert all(p.requires_grad for p in pico.parameters())  # the original is not frozen in place


def test_lora_update_matches_peft_layer(pico):
    adapted = lora_model(pico, rank=4, alpha=8, targets=["q_proj"])
    layer = adapted.base_model.model.model.layers[0].self_attn.q_proj
    A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    with torch.no_grad():
        B.normal_()
        x = torch.randn(3, pico.config.hidden_size)
        expected = x @ lora_update(layer.base_layer.weight, A, B, 8, 4).T
        assert torch.allclose(layer(x), expected, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "rank=0 must be a positive integer"),
    ({"rank": -2}, "rank=-2"),
    ({"rank": 4, "alpha": 0}, "alpha=0 must be a finite number > 0"),
    ({"rank": 4, "dropout": 1.5}, "dropout=1.5"),
    ({"rank": 4, "targets": ["c_attn"]}, r"\['c_attn'\] match no module"),
    ({"rank": 4, "targets": []}, "targets are empty"),
])
def test_bad_lora_configs_are_refused(pico, kwargs, message):
    with pytest.raises(ValueError, match=message):
        lora_model(pico, **kwargs)


def test_linear_module_names(pico):
    assert {"q_proj", "v_proj", "down_proj"} <= set(linear_module_names(pico))


def test_lora_training_moves_only_adapters(pico, tiny_blocks):
    adapted = lora_model(pico, rank=2, targets="all-linear")
    frozen = {n: p.detach().clone() for n, p in adapted.named_parameters() if not p.requires_grad}
    result = train(adapted, tiny_blocks[0], tiny_blocks[1],
                   TrainConfig(steps=6, batch_size=4, lr=1e-2, progress=False))
    assert all(torch.equal(p, frozen[n]) for n, p in adapted.named_parameters() if n in frozen)
    expected = adamw_state_estimate(adapted)
    assert expected <= result.optimizer_bytes <= expected + 64 * len(list(adapted.parameters()))


def test_measured_optimizer_bytes_leaves_weights_alone(pico):
    before = [p.detach().clone() for p in pico.parameters()]
    measured = measured_optimizer_bytes(pico)
    assert measured >= adamw_state_estimate(pico)
    assert all(torch.equal(a, b) for a, b in zip(before, pico.parameters()))
    full, small = measured_optimizer_bytes(pico), measured_optimizer_bytes(lora_model(pico, 1))
    assert full > 10 * small


def test_lora_cost(pico):
    cost = lora_cost(pico, rank=2, targets=["q_proj"])
    assert cost["trainable"] == pico.config.num_hidden_layers * 2 * 2 * pico.config.hidden_size
    assert cost["adamw_measured_bytes"] >= cost["adamw_estimate_bytes"] > 0


def test_adapter_save_reload_merge(pico, tmp_path, tiny_blocks):
    adapted = lora_model(pico, rank=2, targets="all-linear")
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    size = save_adapter(adapted, tmp_path / "adapter")
    assert size == file_size_bytes(tmp_path / "adapter")
    pico.save_pretrained(tmp_path / "full")
    assert size < file_size_bytes(tmp_path / "full")
    x = tiny_blocks[0][:2, :-1]
    with torch.no_grad():
        ref = adapted(input_ids=x).logits
        assert torch.allclose(load_adapter(pico, tmp_path / "adapter")(input_ids=x).logits, ref)
        merged = merge_adapter(adapted)
        assert not hasattr(merged, "peft_config")
        assert torch.allclose(merged(input_ids=x).logits, ref, atol=1e-5)


def test_adapter_on_the_wrong_base_is_refused(pico, char_tok, tmp_path):
    save_adapter(lora_model(pico, rank=2), tmp_path / "adapter")
    other = build_model("nano", char_tok, 32)
    with pytest.raises(ValueError, match="hidden_size=32, not 48"):
        load_adapter(other, tmp_path / "adapter")
    with pytest.raises(ValueError, match="no adapter_config.json"):
        load_adapter(pico, tmp_path)


def test_failed_adapter_save_keeps_the_previous_one(pico, tmp_path, monkeypatch):
    path = tmp_path / "adapter"
    save_adapter(lora_model(pico, rank=2), path)
    before = (path / "adapter_config.json").read_text()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    import peft.peft_model

    monkeypatch.setattr(peft.peft_model, "safe_save_file", disk_full)
    with pytest.raises(OSError):
        save_adapter(lora_model(pico, rank=4), path)
    assert (path / "adapter_config.json").read_text() == before


def test_untrained_tokens_are_found_and_reinitialised(pico):
    blocks = torch.tensor([[1, 2, 3, 2]])
    ids = untrained_token_ids(blocks, pico.config.vocab_size)
    assert set(ids.tolist()) == set(range(pico.config.vocab_size)) - {1, 2, 3}
    fresh = reinit_untrained_tokens(pico, ids, seed=0)
    old, new = pico.get_input_embeddings().weight, fresh.get_input_embeddings().weight
    assert torch.equal(old[1:4], new[1:4]) and not torch.equal(old[ids], new[ids])
    assert torch.equal(new, reinit_untrained_tokens(pico, ids, seed=0).get_input_embeddings().weight)


def test_instruction_rows_mask_the_prompt():
    tok = load_tokenizer()
    inputs, labels = instruction_rows(tok, ["Where does Mia live?", "What is Leo's job?"],
                                      ["Mia lived in Oakville.", "Leo worked as a baker."])
    assert inputs.shape == labels.shape and inputs.shape[0] == 2
    prompt_len = 1 + len(tok.encode(chat_prompt(tok, "Where does Mia live?"),
                                     add_special_tokens=False))
    kept = labels[0][labels[0] != -100]
    assert (labels[0, :prompt_len - 1] == -100).all()
    assert tok.decode(kept) == " Mia lived in Oakville." + tok.eos_token
    _, unmasked = instruction_rows(tok, ["Where does Mia live?"], ["Oakville"], mask_prompt=False)
    assert (unmasked[0] != -100).sum() > (labels[0] != -100).sum() - 3
    with pytest.raises(ValueError, match="more than width=4"):
        instruction_rows(tok, ["Where does Mia live?"], ["Oakville"], width=4)
    with pytest.raises(ValueError, match="No instruction examples"):
        instruction_rows(tok, [], [])


def test_saved_adapter_records_its_base(pico, tmp_path):
    save_adapter(lora_model(pico, rank=1), tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "llmup_base.json").read_text())
    assert meta["base_config"]["hidden_size"] == pico.config.hidden_size


def test_lora_with_trainable_tokens_trains(pico, tiny_blocks):
    adapted = lora_model(pico, rank=2, targets="all-linear", trainable_tokens=[1, 2, 3])
    before = adapted.get_input_embeddings().weight.detach().clone()
    result = train(adapted, tiny_blocks[0], tiny_blocks[1],
                   TrainConfig(steps=4, batch_size=4, lr=1e-2, progress=False))
    after = result.model.get_input_embeddings().weight.detach()
    assert not torch.equal(before[1:4], after[1:4])  # the chosen token rows learned
    assert torch.equal(before[4:], after[4:])  # no other row moved


@pytest.mark.slow  # 4.3-7.0 s on 2 shared cores (2026-12-04)
def test_domain_floor_is_the_notes_entropy_per_token():
    """The floor in nats/token is bits/char × ln 2 / tokens/char, positive and below the base
    model's domain loss (a model cannot beat the true entropy)."""
    import math

    from llmup_lib.core.base import load_base_model
    from llmup_lib.core.corpora import load_corpus
    from llmup_lib.core.evaluate import count_tokens_per_char
    from llmup_lib.tasks.domain import domain_blocks, domain_floor_nats
    from llmup_lib.core.profiles import get_profile
    from llmup_lib.core.tokenizer import load_tokenizer
    from llmup_lib.core.train import eval_loss
    from llmup_lib.world.stories import entropy_bits_per_char

    profile, tok = get_profile("cpu"), load_tokenizer()
    val = load_corpus("domain", n_train=profile.n_domain, n_val=profile.n_val)["validation"]
    expected = (entropy_bits_per_char(val) * math.log(2)
                / count_tokens_per_char(list(val["text"]), tok))
    floor = domain_floor_nats(profile, tok)
    assert floor == pytest.approx(expected) and 0 < floor < math.log(len(tok))
    _, domain_val = domain_blocks(profile, tok)
    assert floor < eval_loss(load_base_model(profile, progress=False), domain_val, 8)


@pytest.mark.slow  # 22 s on 2 shared cores (2026-12-04)
def test_domain_scorer_gives_notebook_02s_numbers_in_order():
    """One scorer for the notebooks and the sweep: the default three numbers, or all five of
    notebook 02's in DOMAIN_METRICS order, the excess being the loss minus the floor."""
    from llmup_lib.core.profiles import get_profile
    from llmup_lib.tasks.domain import DOMAIN_METRICS, domain_floor_nats, domain_scorer

    profile, tok = get_profile("cpu"), load_tokenizer()
    model = build_model("pico", tok, profile.context, seed=0)
    full = domain_scorer(profile, tok, metrics=reversed(DOMAIN_METRICS))(model)
    assert tuple(full) == DOMAIN_METRICS
    assert full["domain excess"] == full["domain loss"] - domain_floor_nats(profile, tok)
    short = domain_scorer(profile, tok)
    assert short(model) == {m: full[m] for m in ("domain loss", "domain facts", "general loss")}
    # the domain loss is scored on whole notes, each from its start: the floor's contexts
    from llmup_lib.core.evaluate import whole_document_losses

    nats, counts = whole_document_losses(model, tok, short.domain_texts)
    assert full["domain loss"] == pytest.approx(float(nats.sum() / counts.sum()))
    assert len(short.domain_texts) == profile.n_val
    for bad in ("domain loss", (), ["domain loss", "accuracy"]):
        with pytest.raises(ValueError, match="must be one or more of"):
            domain_scorer(profile, tok, metrics=bad)


def test_replay_mixes_a_share_of_general_blocks_into_the_domain_blocks():
    import torch

    from llmup_lib.tasks.domain import REPLAY_SHARE, replay_blocks

    domain, general = torch.zeros(40, 8, dtype=torch.long), torch.ones(100, 8, dtype=torch.long)
    mix = replay_blocks(domain, general)
    assert REPLAY_SHARE == 0.2 and len(mix) == 50 and (mix[40:] == 1).all()
    assert (mix[:40] == 0).all() and len(replay_blocks(domain, general, 0.0)) == 40
    for bad in (1.0, -0.1, "0.2", True):
        with pytest.raises(ValueError, match=f"share={bad!r} must be a fraction in"):
            replay_blocks(domain, general, bad)
    with pytest.raises(ValueError, match="needs 360 general blocks and there are 100"):
        replay_blocks(domain, general, 0.9)
