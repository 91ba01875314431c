import math
from pathlib import Path

import pytest

from llmup_lib.core.base import load_base_model, shipped_metrics
from llmup_lib.core.evaluate import (count_tokens_per_char, exact_match, fact_accuracy, generate,
                                     generate_greedy, generation_speed, language_model_metrics,
                                     sequence_logprobs)
from llmup_lib.core.memory import peak_memory_mb
from llmup_lib.core.models import build_model
from llmup_lib.core.profiles import get_profile
from llmup_lib.core.tokenizer import load_tokenizer
from llmup_lib.teaching.widgets import sample_text
from llmup_lib.world.stories import make_world, world_facts


@pytest.fixture(scope="module")
def base():
    return load_base_model(get_profile("cpu")), load_tokenizer()


def test_bits_per_char_is_loss_over_ln2_times_tokens_per_char(base):
    model, tok = base
    texts = ["Mia lived in Oakville. Mia had a pet cat."] * 40
    m = language_model_metrics(model, tok, texts, 32, floor_bpc=0.1)
    assert m["tokens_per_char"] == pytest.approx(count_tokens_per_char(texts, tok))
    assert m["bits_per_char"] == pytest.approx(m["loss"] / math.log(2) * m["tokens_per_char"])
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
    assert m["gap_bpc"] == pytest.approx(m["bits_per_char"] - 0.1)


def test_sequence_logprobs_prefers_the_fact(base):
    model, tok = base
    fact = world_facts(make_world(0), "world")[0]
    prompt = fact["context"] + fact["prompt"]
    right, wrong = sequence_logprobs(model, tok, [prompt, prompt], [fact["answer"], " zzz"])
    assert right > wrong and right <= 0


@pytest.mark.slow  # 11 s on 2 shared cores (2026-12-04)
def test_fact_accuracy_separates_trained_from_untrained(base):
    model, tok = base
    facts = world_facts(make_world(0), "world")
    trained = fact_accuracy(model, tok, facts)
    fresh = fact_accuracy(build_model("small", tok, 128, seed=5), tok, facts)
    assert trained["accuracy"] >= 0.6 and fresh["accuracy"] < 0.3
    assert 0 < trained["chance"] < 0.2
    assert set(trained["by_relation"]) == {"lives_in", "job", "pet", "food"}


def test_generate_is_seeded_and_checks_temperature(base):
    model, tok = base
    a = generate(model, tok, "Once upon a time", 20, temperature=1.0, seed=3)
    assert a == generate(model, tok, "Once upon a time", 20, temperature=1.0, seed=3)
    assert generate(model, tok, "Once", 10, greedy=True) == generate(model, tok, "Once", 10,
                                                                      greedy=True)
    with pytest.raises(ValueError, match="temperature=0"):
        generate(model, tok, "Once", 5, temperature=0)
    assert sample_text(model, tok, "Once", 0.7, seed=3).startswith("Once")


def test_batched_greedy_generation_repeats_one_prompt_at_a_time(base):
    """Prompts of different lengths, left-padded in one batch (and split over batches), give the
    text each gives alone: padding is masked and positions start at each prompt's own start."""
    model, tok = base
    prompts = ["Once", "This is a story about Mia. Mia lived in", "Tess had a pet",
               "<|endoftext|>The", "Finn worked as a baker. Finn had a pet dog. Finn liked"]
    alone = [generate(model, tok, p, 12, greedy=True) for p in prompts]
    assert generate_greedy(model, tok, prompts, 12) == alone
    assert generate_greedy(model, tok, prompts, 12, batch_size=2) == alone
    assert len(set(alone)) > 1  # the prompts lead somewhere different
    with pytest.raises(ValueError, match="batch_size=0 must be a positive whole number"):
        generate_greedy(model, tok, prompts, 4, batch_size=0)


def test_exact_match_scores_predictions(base):
    model, tok = base
    out = exact_match(model, tok, ["a", "b"], ["x", "y"], lambda q: f"Q: {q}\nA:", 4)
    assert len(out["predictions"]) == 2 and 0 <= out["accuracy"] <= 1
    # a prompt whose greedy continuation we know scores 1
    pred = generate(model, tok, "This is a story about Mia.", 8, greedy=True).split("\n")[0].strip()
    assert exact_match(model, tok, ["q"], [pred], lambda q: "This is a story about Mia.",
                       8)["accuracy"] == 1.0


def test_speed_and_memory_are_measured(base):
    model, tok = base
    speed = generation_speed(model, tok, new_tokens=8, repeats=1)
    assert speed["tokens_per_second"] > 0
    assert speed["ms_per_token"] == pytest.approx(1000 / speed["tokens_per_second"])
    assert 50 < peak_memory_mb() < 20_000


def test_shipped_base_metrics(base):
    assert shipped_metrics(get_profile("cpu"))["steps"] == get_profile("cpu").base_steps


@pytest.mark.slow  # 13 s on 2 shared cores (2026-12-04)
def test_peak_memory_sees_a_temporary_allocation():
    """In a fresh process: after hundreds of tests, this process's allocator can hand out a 64 MB
    block from memory that is already resident (a full-suite run saw a rise of 0.004 MB even
    after waiting 2 s for the sampler), which says nothing about PeakMemory."""
    import subprocess
    import sys

    script = """
import time, torch
from llmup_lib.core.memory import PeakMemory
with PeakMemory(interval_s=0.001) as small:
    pass
with PeakMemory(interval_s=0.001) as big:
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
    deadline = time.monotonic() + 2  # hold it until the sampling thread has seen it
    while big._max - big._start < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    del block
print(big.peak_mb, small.peak_mb)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    big, small = map(float, out.split())
    assert big > 40 > small


@pytest.mark.slow  # 14 s on 2 shared cores (2026-12-04)
def test_peak_memory_is_this_processes_not_its_parents():
    """A kernel started by a big pytest process must not report the parent's peak (ru_maxrss
    survives exec on Linux; VmHWM does not)."""
    import subprocess
    import sys

    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc: ru_maxrss is all there is")
    big = bytearray(400 * 2**20)
    for i in range(0, len(big), 4096):
        big[i] = 1
    parent = peak_memory_mb()
    del big
    out = subprocess.run([sys.executable, "-c", "from llmup_lib.core.memory import peak_memory_mb;"
                          "print(peak_memory_mb())"], capture_output=True, text=True, check=True)
    child = float(out.stdout.strip())
    assert child < parent - 300, (child, parent)


def test_a_prompt_longer_than_the_context_is_refused_in_one_sentence(base):
    from llmup_lib.core.evaluate import generate, generate_greedy

    model, tok = base
    limit = model.config.max_position_embeddings
    long_prompt = " ".join(["Mia"] * (2 * limit))
    with pytest.raises(ValueError, match=rf"tokens but the model's context is {limit}; shorten"):
        generate(model, tok, long_prompt, max_new_tokens=2, greedy=True)
    with pytest.raises(ValueError, match=r"Prompt 1 is \d+ tokens"):
        generate_greedy(model, tok, ["Mia", long_prompt], max_new_tokens=2)


# ----------------------------------------------------------------------------- whole documents
@pytest.mark.parametrize("kind", ["general", "domain"])
def test_the_per_document_floor_is_the_generators_exact_log_probability(kind):
    """Scored whole, a document's floor is its generator log-probability, read back from the
    text alone: the same number the generator recorded when it wrote it (to 1e-6 nats)."""
    import math

    from llmup_lib.world.stories import document_floor_nats, domain_corpus, general_corpus

    corpus = (general_corpus if kind == "general" else domain_corpus)(n_train=200, n_val=0, seed=3)
    docs = corpus["train"]
    floors = document_floor_nats(docs["text"], kind)
    recorded = [bits * math.log(2) for bits in docs["logprob_bits"]]
    assert max(abs(a - b) for a, b in zip(floors, recorded)) < 1e-6
    assert min(floors) > 0


def test_whole_documents_are_scored_alone_from_their_start(base):
    """Batched and padded, each document's nats equal scoring it alone after one EOS."""
    import torch
    import torch.nn.functional as F

    from llmup_lib.core.evaluate import whole_document_losses

    model, tok = base
    texts = ["Mia lived in Oakville.", "Patient: 45-year-old man. Complaint: cough.", "Tom sang."]
    nats, counts = whole_document_losses(model, tok, texts, batch_size=2)
    for text, n, c in zip(texts, nats, counts):
        ids = torch.tensor([[tok.eos_token_id, *tok.encode(text, add_special_tokens=False),
                             tok.eos_token_id]])
        with torch.no_grad():
            logits = model(input_ids=ids[:, :-1]).logits
        alone = F.cross_entropy(logits[0], ids[0, 1:], reduction="sum")
        assert abs(float(alone) - float(n)) < 1e-3 and int(c) == ids.shape[1] - 1


def test_packing_costs_the_base_model_on_its_own_stories(base):
    """The packing term is real: on the same stories, packed 128-token blocks score worse than
    whole documents (tokens after a cut lose their story's beginning)."""
    from llmup_lib.core.corpora import load_corpus
    from llmup_lib.core.evaluate import language_model_metrics, whole_document_metrics

    model, tok = base
    texts = list(load_corpus("general", n_train=10, n_val=300)["validation"]["text"])
    packed = language_model_metrics(model, tok, texts, 128)["loss"]
    whole = whole_document_metrics(model, tok, texts)["loss"]
    assert packed - whole > 0.005, (packed, whole)


def test_a_document_longer_than_the_context_is_refused(base):
    from llmup_lib.core.evaluate import whole_document_losses

    model, tok = base
    with pytest.raises(ValueError, match=r"Document 1 is \d+ tokens, longer than the model's"):
        whole_document_losses(model, tok, ["Mia.", " ".join(["Mia"] * 400)])


def test_a_context_blind_model_shows_no_packing_term():
    """Notebook 01's check (packing term > 0.005 nats/token) fails on a null: a bigram model,
    which predicts from the current token alone, loses nothing when a block cuts a story, so
    packed and whole-document scores agree to well under the bar (measured: 0.0007)."""
    import types

    import torch

    from llmup_lib.core.corpora import load_corpus
    from llmup_lib.core.evaluate import language_model_metrics, whole_document_metrics
    from llmup_lib.core.tokenizer import tokenize_corpus

    class Bigram(torch.nn.Module):
        def __init__(self, ids, vocab):
            super().__init__()
            counts, ids = torch.ones(vocab, vocab), torch.tensor(ids)
            counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
            self.table = torch.nn.Parameter(counts.log(), requires_grad=False)
            self.config = types.SimpleNamespace()

        def forward(self, input_ids, **_):
            return types.SimpleNamespace(logits=self.table[input_ids])

    tok = load_tokenizer()
    corpus = load_corpus("general", n_train=2000, n_val=300)
    model = Bigram(tokenize_corpus(list(corpus["train"]["text"]), tok), len(tok))
    texts = list(corpus["validation"]["text"])
    packed = language_model_metrics(model, tok, texts, 128)["loss"]
    whole = whole_document_metrics(model, tok, texts)["loss"]
    assert abs(packed - whole) < 0.005, (packed, whole)
