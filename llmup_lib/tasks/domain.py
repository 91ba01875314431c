"""The domain task, built once: clinic notes for a base model pretrained on stories.

Notebooks 02, 03, 04 and 07 and the learning-rate sweep (``experiments.tuning``) all read the task
from here: the blocks (``domain_blocks``), the floor (``domain_floor_nats``: the notes' true
entropy in nats per token), the recipe (``domain_recipe``), the starting point (``prepared_base``:
the base model with its never-trained tokens re-initialised), the replay mix (``replay_blocks``),
the scorer (``domain_scorer``: domain loss and its excess over the floor, scored on whole notes,
domain facts, general loss, world facts) and the fully fine-tuned model, cached on disk
(``domain_model``).
"""

from __future__ import annotations

import shutil
import warnings

import torch

from ..core.train import TrainConfig
from ..methods.finetune import full_finetune_model, reinit_untrained_tokens, untrained_token_ids


def domain_blocks(profile, tokenizer, n_docs: int | None = None):
    """Training and validation blocks of the clinic-note corpus (the first ``n_docs`` notes)."""
    from ..core.corpora import load_corpus
    from ..core.tokenizer import pack_blocks

    corpus = load_corpus("domain", n_train=profile.n_domain, n_val=profile.n_val, seed=profile.seed)
    texts = list(corpus["train"]["text"])[:n_docs]
    return (pack_blocks(texts, tokenizer, profile.context),
            pack_blocks(list(corpus["validation"]["text"]), tokenizer, profile.context))


def domain_floor_nats(profile, tokenizer) -> float:
    """The clinic notes' true entropy in nats per token of ``tokenizer``: the floor every domain
    loss is measured against (excess loss = loss − floor)."""
    import math

    from ..core.corpora import load_corpus
    from ..core.evaluate import count_tokens_per_char
    from ..world.stories import entropy_bits_per_char

    val = load_corpus("domain", n_train=profile.n_domain, n_val=profile.n_val,
                      seed=profile.seed)["validation"]
    return (entropy_bits_per_char(val) * math.log(2)
            / count_tokens_per_char(list(val["text"]), tokenizer))


REPLAY_SHARE = 0.2  # the share of general (pretraining) blocks in the replay mix: 1 in 5


def replay_blocks(domain_train, general_train, share: float = REPLAY_SHARE):
    """The domain blocks with general blocks mixed back in (*replay*), so that ``share`` of the
    mix is general text: the first ``round(n * share / (1 - share))`` general blocks for ``n``
    domain blocks. Same steps and batch, so the run sees fewer domain blocks per step."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ValueError(f"share={share!r} must be a fraction in [0, 1), e.g. 0.2 for one "
                         "general block in five.")
    n_general = round(len(domain_train) * share / (1 - share))
    if n_general > len(general_train):
        raise ValueError(f"share={share!r} needs {n_general} general blocks and there are "
                         f"{len(general_train)}; use a smaller share.")
    return torch.cat([domain_train, general_train[:n_general]])


def domain_recipe(profile, steps: int | None = None, lr: float | None = None) -> TrainConfig:
    """Fine-tuning recipe: a quarter of the base model's steps at its peak learning rate."""
    return TrainConfig(steps=steps or profile.base_steps // 4, batch_size=profile.batch_size,
                       lr=lr or profile.lr, seed=profile.seed, eval_batches=16)


def prepared_base(profile, tokenizer):
    """The base model with its untrained tokens re-initialised, and the ids of those tokens that
    the domain uses (the ones an adapter must be allowed to learn)."""
    from ..core.base import general_blocks, load_base_model

    general_train, _ = general_blocks(profile, tokenizer)
    untrained = untrained_token_ids(general_train, len(tokenizer))
    base = reinit_untrained_tokens(load_base_model(profile, progress=False), untrained,
                                   seed=profile.seed)
    domain_train, _ = domain_blocks(profile, tokenizer)
    new_tokens = untrained[torch.isin(untrained, torch.unique(domain_train))]
    return base, new_tokens


def domain_model_dir(profile, tokenizer):
    """Where ``domain_model`` caches its model: ``$LLMUP_CACHE/domain/<name>-<key>``, the key
    a hash of the base recipe and the fine-tuning recipe (a changed profile value or tokenizer
    gets a model of its own)."""
    from ..store import digest, cache_dir
    from ..core.base import base_recipe_key

    cfg = domain_recipe(profile)
    key = digest({"base": base_recipe_key(profile, tokenizer), "n_domain": profile.n_domain,
                   "steps": cfg.steps, "lr": cfg.lr, "batch_size": cfg.batch_size})
    return cache_dir() / "domain" / f"{profile.name}-{key}"


def domain_model(profile, tokenizer, progress: bool = True):
    """The base model fully fine-tuned on clinic notes (notebook 02's recipe), cached on disk
    (with checksums) so notebook 07 and 04's exercise can start from it; trained (about 15 s on
    2 cores) when missing or corrupt."""
    from ..core.models import load_model
    from ..core.train import train
    from ..store import atomic_folder, manifest_damage, write_manifest

    path = domain_model_dir(profile, tokenizer)
    if (path / "config.json").exists():
        problem = manifest_damage(path)  # checksums (a cache without them is trusted)
        try:
            if problem is None:
                return load_model(path).to(profile.torch_device())
        except ValueError:  # unreadable: rebuilt below, never loaded
            problem = "unreadable"
        warnings.warn(f"The cached domain model in {str(path)!r} is corrupt ({problem}); "
                      "rebuilding it.", stacklevel=2)
        shutil.rmtree(path, ignore_errors=True)
    base, _ = prepared_base(profile, tokenizer)
    train_blocks, val_blocks = domain_blocks(profile, tokenizer)
    cfg = domain_recipe(profile)
    cfg.progress = progress
    model = train(full_finetune_model(base), train_blocks, val_blocks, cfg).model
    with atomic_folder(path) as tmp:
        model.save_pretrained(tmp)
        write_manifest(tmp)
    return model


DOMAIN_METRICS = ("domain loss", "domain excess", "domain facts", "general loss", "world facts")
"""Notebook 02's numbers, in the order they are computed and shown: domain loss and its excess
over the floor, domain fact accuracy, general loss and world fact accuracy (what is forgotten)."""
SCORER_METRICS = ("domain loss", "domain facts", "general loss")  # domain_scorer's default


def validate_metrics(metrics) -> tuple:
    """``metrics`` as a tuple in ``DOMAIN_METRICS`` order; unknown or no names raise."""
    names = () if isinstance(metrics, str) or not hasattr(metrics, "__iter__") else tuple(metrics)
    if not names or any(m not in DOMAIN_METRICS for m in names):
        raise ValueError(f"metrics={metrics!r} must be one or more of {DOMAIN_METRICS}, as a "
                         "tuple such as ('domain loss', 'general loss').")
    return tuple(m for m in DOMAIN_METRICS if m in names)


class DomainScorer:
    """``scorer(model)``: the chosen ``metrics`` of a model on the domain task, as a dict in
    ``DOMAIN_METRICS`` order, with the data loaded once. Attributes: ``domain_texts`` (the
    held-out notes), ``general_val`` (the stories' validation blocks), ``floor_nats`` (the
    notes' true entropy), ``facts`` (the clinic's facts) and ``world_facts`` (the stories').

    The domain loss is scored on whole notes, each from its start
    (``evaluate.whole_document_losses``), because that is what the floor is the floor of: packed
    blocks cut notes mid-way and add a packing term (notebook 01) to every excess. The general
    loss, compared only with the base model's, stays on packed blocks."""

    def __init__(self, profile, tokenizer, metrics=SCORER_METRICS):
        from ..core.base import general_blocks
        from ..core.corpora import load_corpus
        from ..world.stories import make_world, world_facts

        self.metrics = validate_metrics(metrics)
        self.tokenizer = tokenizer
        notes = load_corpus("domain", n_train=profile.n_domain, n_val=profile.n_val,
                            seed=profile.seed)
        self.domain_texts = list(notes["validation"]["text"])
        _, self.general_val = general_blocks(profile, tokenizer)
        self.floor_nats = domain_floor_nats(profile, tokenizer)
        self.facts = world_facts(make_world(0), "domain")
        self.world_facts = world_facts(make_world(0), "world")

    def __call__(self, model) -> dict:
        from ..core.evaluate import fact_accuracy, whole_document_losses
        from ..core.train import eval_loss

        wanted, out = self.metrics, {}
        nats, counts = whole_document_losses(model, self.tokenizer, self.domain_texts)
        loss = float(nats.sum() / counts.sum())  # every metric below in DOMAIN_METRICS order
        out["domain loss"], out["domain excess"] = loss, loss - self.floor_nats
        if "domain facts" in wanted:
            out["domain facts"] = fact_accuracy(model, self.tokenizer, self.facts)["accuracy"]
        if "general loss" in wanted:
            out["general loss"] = eval_loss(model, self.general_val, 32)
        if "world facts" in wanted:
            out["world facts"] = fact_accuracy(model, self.tokenizer, self.world_facts)["accuracy"]
        return {m: out[m] for m in wanted}


def domain_scorer(profile, tokenizer, metrics=SCORER_METRICS) -> DomainScorer:
    """``score(model)``: domain loss, domain fact accuracy and general loss by default; pass
    ``metrics=DOMAIN_METRICS`` for all five of notebook 02's numbers (the learning-rate sweep's
    too). The blocks, the floor and the facts are loaded once (see ``DomainScorer``)."""
    return DomainScorer(profile, tokenizer, metrics)
