"""Every public helper on seven architectures, built tiny and random: none assumes Llama's layout.

Between them the seven cover grouped-query attention (Llama, Qwen2, Gemma2), partial rotary
(GPT-NeoX, Phi), tied embeddings (Llama, Gemma2), final-logit softcapping and a head dimension
other than width / heads (Gemma2), biases (GPT-2, Qwen2's qkv, Phi, OPT), GPT-2's ``Conv1D``
layers and learned positions (GPT-2, OPT). The matrix, helper by architecture, is in
docs/reliability.md.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModelForCausalLM

from llmup_lib.core.evaluate import generate, generate_greedy
from llmup_lib.core.models import decoder_layers, flops_per_token, load_model
from llmup_lib.core.train import TrainConfig, train
from llmup_lib.methods.distill import TeacherCache, distill, half_depth_student
from llmup_lib.methods.finetune import freeze_except
from llmup_lib.methods.lora import load_adapter, lora_model, merge_adapter, save_adapter

SHAPE = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=64)
ARCHITECTURES = {  # name: (model_type, config, the attention projections a named LoRA targets)
    "llama": ("llama", dict(SHAPE, intermediate_size=64, num_key_value_heads=2,
                            tie_word_embeddings=True), ["q_proj", "v_proj"]),
    "gpt2": ("gpt2", dict(n_embd=32, n_layer=3, n_head=4, n_positions=64), ["c_attn"]),
    "gpt_neox": ("gpt_neox", dict(SHAPE, intermediate_size=64, rotary_pct=0.25),
                 ["query_key_value"]),
    "qwen2": ("qwen2", dict(SHAPE, intermediate_size=64, num_key_value_heads=2),
              ["q_proj", "v_proj"]),
    "gemma2": ("gemma2", dict(SHAPE, intermediate_size=64, num_key_value_heads=2, head_dim=16,
                              final_logit_softcapping=3.0), ["q_proj", "o_proj"]),
    "phi": ("phi", dict(SHAPE, intermediate_size=64, partial_rotary_factor=0.5),
            ["q_proj", "dense"]),
    "opt": ("opt", dict(SHAPE, ffn_dim=64, word_embed_proj_dim=32), ["q_proj", "v_proj"]),
}
pytestmark = pytest.mark.parametrize("arch", list(ARCHITECTURES))


def tiny(arch: str, vocab_size: int, seed: int = 0, **kwargs):
    model_type, fields, _ = ARCHITECTURES[arch]
    config = AutoConfig.for_model(model_type, vocab_size=vocab_size, bos_token_id=0,
                                  eos_token_id=0, pad_token_id=1, **fields)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, **kwargs)


def cfg(**overrides) -> TrainConfig:
    return TrainConfig(**{**dict(steps=4, batch_size=8, lr=3e-3, warmup_steps=0, progress=False,
                                 memory_check=False), **overrides})


def logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(input_ids=x).logits


def test_train_resume_save_and_load(arch, char_tok, tiny_blocks, tmp_path):
    train_blocks, val_blocks = tiny_blocks
    straight = train(tiny(arch, len(char_tok)), train_blocks, val_blocks, cfg(steps=6)).model
    model = tiny(arch, len(char_tok))
    train(model, train_blocks, None, cfg(steps=6, checkpoint_dir=tmp_path / "ck",
                                         checkpoint_every=3))
    # a second run from the step-3 checkpoint: the same weights as training straight through
    (tmp_path / "ck" / "latest").write_text("step-000003")
    for later in (tmp_path / "ck").glob("step-00000[4-9]"):
        __import__("shutil").rmtree(later)
    resumed = train(tiny(arch, len(char_tok), seed=1), train_blocks, None,
                    cfg(steps=6, checkpoint_dir=tmp_path / "ck", checkpoint_every=3)).model
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    x = val_blocks[:2, :-1]
    straight.save_pretrained(tmp_path / "saved")
    assert torch.allclose(logits(load_model(tmp_path / "saved"), x), logits(straight, x), atol=1e-6)
    # a checkpoint folder is a model folder too
    back = load_model(tmp_path / "ck" / "step-000006")
    assert torch.allclose(logits(back, x), logits(straight, x), atol=1e-6)


@pytest.mark.parametrize("targets", ["all-linear", "named"])
def test_lora_trains_merges_and_reloads(arch, targets, char_tok, tiny_blocks, tmp_path):
    train_blocks, val_blocks = tiny_blocks
    base = tiny(arch, len(char_tok))
    chosen = ARCHITECTURES[arch][2] if targets == "named" else "all-linear"
    adapted = train(lora_model(base, rank=2, targets=chosen), train_blocks, None,
                    cfg(lr=1e-2)).model
    x = val_blocks[:2, :-1]
    after = logits(adapted, x)
    assert (after - logits(base, x)).abs().max() > 1e-3  # the adapter learned something
    assert save_adapter(adapted, tmp_path / "adapter") > 0
    reloaded = load_adapter(base, tmp_path / "adapter")
    assert torch.allclose(logits(reloaded, x), after, atol=1e-5)
    assert torch.allclose(logits(merge_adapter(adapted), x), after, atol=1e-4)  # merged = unmerged


def test_half_depth_student_copies_every_other_layer(arch, char_tok, tiny_blocks):
    teacher = tiny(arch, len(char_tok))
    student = half_depth_student(teacher)
    prefix, layers = decoder_layers(student)
    assert len(layers) == 2 == student.config.num_hidden_layers
    _, teacher_layers = decoder_layers(teacher)
    for j, i in enumerate([0, 2]):
        for (name, a), b in zip(layers[j].state_dict().items(),
                                teacher_layers[i].state_dict().values()):
            assert torch.equal(a, b), f"{prefix}.{j}.{name}"
    student(input_ids=tiny_blocks[1][:2, :-1])  # it runs
    fresh = half_depth_student(teacher, from_teacher=False)
    assert not all(torch.equal(a, b) for a, b in zip(decoder_layers(fresh)[1][1].parameters(),
                                                     teacher_layers[2].parameters()))


def test_distill_from_logits_and_from_hidden_states(arch, char_tok, tiny_blocks):
    train_blocks, val_blocks = tiny_blocks
    teacher = train(tiny(arch, len(char_tok)), train_blocks, None, cfg()).model
    blocks = train_blocks[:32]
    by_logits = TeacherCache(teacher, blocks, progress=False)
    by_hidden = TeacherCache(teacher, blocks, max_logits_mb=0, progress=False)
    assert (by_logits.stores, by_hidden.stores) == ("logits", "hidden")
    rows = torch.arange(8)
    assert torch.allclose(by_hidden.logits(rows), by_logits.logits(rows), atol=1e-4)
    for source in (teacher, by_hidden):
        result = distill(half_depth_student(teacher), source, blocks, val_blocks,
                         cfg(steps=3, eval_every=3))
        losses = [row.get("train_loss", row.get("val_loss")) for row in result.history]
        assert losses and all(torch.isfinite(torch.tensor(loss)) for loss in losses)


def test_freeze_except_trains_only_the_chosen_layer_and_final_norm(arch, char_tok, tiny_blocks):
    model = freeze_except(tiny(arch, len(char_tok)), [-1])
    prefix, _ = decoder_layers(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    after = train(model, tiny_blocks[0], None, cfg(steps=2, weight_decay=0.0)).model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(f"{prefix}.2.") or "norm" in k or "ln_f" in k
                           for k in changed), sorted(changed)
    assert any(k.startswith(f"{prefix}.2.") for k in changed)


def test_flops_per_token_matches_a_measured_count(arch, char_tok):
    """FLOPs counted by torch's FlopCounterMode over one forward and backward pass of T tokens
    (every matmul and attention kernel) agree with ``flops_per_token·T``; it undercounted Gemma2
    (head dimension ≠ width / heads) before."""
    model = tiny(arch, len(char_tok), attn_implementation="eager").train()  # plain matmuls
    T = 48
    x = torch.randint(2, len(char_tok), (1, T))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=x, labels=x).loss.backward()
    predicted = flops_per_token(model.config, T)["total"] * T
    assert abs(counter.get_total_flops() / predicted - 1) < 0.02, (counter.get_total_flops(),
                                                                   predicted)


def test_batched_greedy_generation_equals_one_prompt_at_a_time(arch, char_tok):
    model = tiny(arch, len(char_tok)).eval()
    prompts = ["the cat", "a", "once upon a time the"]
    one_by_one = [generate(model, char_tok, p, max_new_tokens=8, greedy=True) for p in prompts]
    assert generate_greedy(model, char_tok, prompts, max_new_tokens=8) == one_by_one
