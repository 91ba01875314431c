"""Same seed, same numbers: every experiment the suite runs repeats exactly on the same
machine, and a different seed changes the numbers (so each check can fail)."""

import pytest
import torch

from llmup_lib.core.corpora import load_corpus
from llmup_lib.methods.distill import distill
from llmup_lib.methods.finetune import full_finetune_model
from llmup_lib.methods.lora import lora_model
from llmup_lib.core.models import build_model
from llmup_lib.core.train import TrainConfig, train


def _cfg(seed):
    return TrainConfig(steps=8, batch_size=8, lr=1e-2, log_every=2, progress=False, seed=seed,
                       eval_batches=2)


def _numbers(result):
    """Every metric of the history and every weight, as plain numbers."""
    weights = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    return [sorted((k, v) for k, v in row.items()) for row in result.history], weights


def _assert_repeats(run):
    (hist_a, w_a), (hist_b, w_b), (hist_c, w_c) = run(0), run(0), run(1)
    assert hist_a == hist_b and torch.equal(w_a, w_b)  # bit-identical
    assert hist_a != hist_c and not torch.equal(w_a, w_c)


@pytest.fixture(scope="module")
def base(char_tok):
    return build_model("pico", char_tok, 32, seed=0)


def test_train(char_tok, tiny_blocks):
    train_b, val_b = tiny_blocks
    _assert_repeats(lambda seed: _numbers(train(build_model("pico", char_tok, 32, seed=seed),
                                                train_b, val_b, _cfg(seed))))


def test_full_finetune(base, tiny_blocks):
    train_b, val_b = tiny_blocks
    _assert_repeats(lambda seed: _numbers(train(full_finetune_model(base), train_b, val_b,
                                                _cfg(seed))))


def test_lora(base, tiny_blocks):
    train_b, val_b = tiny_blocks
    _assert_repeats(lambda seed: _numbers(train(lora_model(base, rank=4, seed=seed), train_b,
                                                val_b, _cfg(seed))))


def test_distillation(char_tok, base, tiny_blocks):
    train_b, val_b = tiny_blocks
    teacher = train(build_model("nano", char_tok, 32, seed=0), train_b, None, _cfg(0)).model

    def run(seed):
        student = build_model("pico", char_tok, 32, seed=seed)
        return _numbers(distill(student, teacher, train_b, val_b, _cfg(seed), alpha=0.5,
                                temperature=2.0))
    _assert_repeats(run)


@pytest.mark.parametrize("source", ["general", "domain"])
def test_corpus_generation(source):
    def run(seed):
        corpus = load_corpus(source, n_train=12, n_val=3, seed=seed)
        return {split: corpus[split].to_dict() for split in corpus}
    a, b, c = run(0), run(0), run(1)
    assert a == b
    assert a["train"]["text"] != c["train"]["text"]
    if "logprob_bits" in a["train"]:  # the exact log-probabilities repeat too
        assert a["train"]["logprob_bits"] != c["train"]["logprob_bits"]
