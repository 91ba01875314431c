"""The "real model" path, offline: Hub-architecture checkpoints saved locally, and Hub names that
fail fast with one clear sentence when the Hub cannot be reached.

The fixture is a miniature Pythia (``GPTNeoXForCausalLM``, the architecture of
EleutherAI/pythia-14m…410m, with its fused ``query_key_value`` attention projection), built from
a config and written with ``save_pretrained`` next to the suite's tokenizer, in ``tmp_path``: the
same files a Hub download leaves on disk, without a download or a committed binary.
"""

import math
import socket

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from llmup_lib.core import corpora, models
from llmup_lib import hub
from llmup_lib.core.corpora import load_corpus
from llmup_lib.core.evaluate import language_model_metrics
from llmup_lib.methods.lora import lora_model
from llmup_lib.methods.finetune import trainable_parameters
from llmup_lib.core.models import load_model
from llmup_lib.core.tokenizer import load_tokenizer

TEXTS = ["Once upon a time a small fox found a red ball in the park.",
         "The nurse wrote that the patient had a mild fever and a cough.",
         "Tom and Mia walked to the river and saw three ducks."] * 4


@pytest.fixture(scope="module")
def pythia_dir(tmp_path_factory):
    """A 2-layer, 32-wide Pythia-style checkpoint and its tokenizer, as save_pretrained writes."""
    path = tmp_path_factory.mktemp("tiny-pythia")
    tok = load_tokenizer()
    config = GPTNeoXConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=128, rotary_pct=0.25,
        use_parallel_residual=True, tie_word_embeddings=False,
        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_a_local_pythia_checkpoint_loads_and_evaluates(pythia_dir):
    model = load_model(pythia_dir)
    tok = load_tokenizer(pythia_dir)
    assert type(model).__name__ == "GPTNeoXForCausalLM"
    assert (pythia_dir / "config.json").exists() and len(tok) == model.config.vocab_size
    # the loaded weights are the saved ones
    again = GPTNeoXForCausalLM.from_pretrained(pythia_dir)
    ids = torch.tensor([tok.encode(TEXTS[0])])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)

    metrics = language_model_metrics(model, tok, TEXTS, context=32, batch_size=4)
    # an untrained model is near-uniform over the vocabulary: loss ≈ ln V
    assert abs(metrics["loss"] - math.log(len(tok))) < 0.3
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert metrics["bits_per_char"] == pytest.approx(
        metrics["loss"] / math.log(2) * metrics["tokens_per_char"])


def test_lora_on_pythias_fused_attention(pythia_dir):
    model = load_model(pythia_dir)
    peft_model = lora_model(model, rank=2, targets=("query_key_value",))
    counts = trainable_parameters(peft_model)
    # per layer: A is r×d_in, B is d_out×r, with d_in = 32 and d_out = 3·32 (q, k, v fused)
    assert counts["trainable"] == 2 * 2 * (32 + 96)
    ids = torch.randint(0, model.config.vocab_size, (2, 16))
    with torch.no_grad():  # B starts at zero: the adapted model starts as the base model
        assert torch.allclose(peft_model(ids).logits, model(ids).logits, atol=1e-6)
    peft_model(ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}
    assert grads and all("lora_" in n for n in grads)
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    # Llama's target names do not exist on Pythia: a clear error naming the valid ones
    with pytest.raises(ValueError, match="query_key_value"):
        lora_model(model, rank=2, targets=("q_proj", "v_proj"))


@pytest.fixture(params=["HF_HUB_OFFLINE=1", "no network"])
def offline(request, monkeypatch):
    """Offline two ways: told so by the environment, or a network where no connection opens."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY",
                "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    if request.param == "HF_HUB_OFFLINE=1":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        def refuse(*args, **kwargs):
            raise OSError("network is unreachable")

        monkeypatch.setattr(socket, "create_connection", refuse)
    assert hub.hub_unreachable()
    return request.param


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


@pytest.mark.parametrize("load, name, why, fix", [
    (load_model, "EleutherAI/pythia-14m", "unreachable", "save_pretrained"),  # a local folder
    (load_corpus, "roneneldan/TinyStories", "offline", "save_to_disk"),  # a local dataset
], ids=["model", "dataset"])
def test_a_hub_name_offline_fails_fast_and_clearly(offline, load, name, why, fix):
    with pytest.raises(ValueError) as err:  # within 2 s: benchmarks/bench_timings.py
        load(name)
    message = str(err.value)
    assert repr(name) in message and why in message
    assert fix in message  # the fix the message names
    assert _one_sentence(message), message


def test_the_offline_check_is_what_the_loaders_ask(monkeypatch):
    """Both loaders consult hub_unreachable before any download (so patching it is enough)."""
    monkeypatch.setattr(models, "hub_unreachable", lambda: True)
    monkeypatch.setattr(corpora, "hub_unreachable", lambda: True)
    with pytest.raises(ValueError, match="unreachable"):
        load_model("EleutherAI/pythia-70m")
    with pytest.raises(ValueError, match="offline"):
        load_corpus("roneneldan/TinyStories")
