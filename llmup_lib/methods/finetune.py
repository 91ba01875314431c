"""Fine-tuning: full, frozen layers, LoRA (through ``peft``), and instruction data with the
prompt's loss masked; plus the cost ledger (trainable parameters, optimizer state, memory).

Every helper that changes which weights train works on a *copy* of the model it is given, so a
notebook can start ten runs from the same base model without reloading it.

LoRA in one line: a frozen weight ``W`` (``d_out × d_in``) is used as ``W + (alpha / r) · B · A``
with ``A`` (``r × d_in``) random and ``B`` (``d_out × r``) zero at the start, so the adapted model
begins exactly as the base model and trains ``r · (d_in + d_out)`` numbers instead of
``d_in · d_out``. ``lora_update`` writes that sum out; ``peft`` does the same inside its layers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shutil
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers.pytorch_utils import Conv1D

from ..core.train import TrainConfig, make_optimizer, optimizer_state_bytes

ALL_LINEAR = "all-linear"  # peft's shorthand: every nn.Linear except the output head


# ----------------------------------------------------------------------------- accounting


def trainable_parameters(model) -> dict:
    """Trainable and total parameters (a tied tensor counted once) and the trainable share."""
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return {"trainable": trainable, "total": total, "percent": 100 * trainable / max(total, 1)}


def adamw_state_estimate(model, bytes_per_value: int = 4) -> int:
    """What AdamW's state will cost before training: ``2 × trainable × bytes`` (m and v)."""
    return 2 * trainable_parameters(model)["trainable"] * bytes_per_value


def measured_optimizer_bytes(model, cfg: TrainConfig | None = None) -> int:
    """Measure AdamW's state for ``model`` by taking one zero-gradient step on a throwaway
    optimizer: the tensors it allocates are the state a real run would hold."""
    cfg = cfg or TrainConfig(steps=1, batch_size=1, lr=1e-3)
    optimizer = make_optimizer(model, cfg)
    saved = [(p, p.grad) for p in model.parameters() if p.requires_grad]
    for p, _ in saved:
        p.grad = torch.zeros_like(p)
    before = [p.detach().clone() for p, _ in saved]
    for group in optimizer.param_groups:  # lr 0 and no decay: the weights cannot move
        group["lr"], group["weight_decay"] = 0.0, 0.0
    optimizer.step()
    measured = optimizer_state_bytes(optimizer)
    for (p, grad), old in zip(saved, before):
        p.grad = grad
        p.data.copy_(old)
    return measured


def file_size_bytes(path) -> int:
    """Total size of a file or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ----------------------------------------------------------------------------- full and frozen


def full_finetune_model(model):
    """A trainable copy of ``model``: every weight updates (the baseline LoRA is measured against)."""
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def freeze_except(model, layers: list[int], train_norm: bool = True, train_embeddings: bool = False):
    """A copy of ``model`` where only the decoder ``layers`` (negative counts from the top) train,
    plus the final norm (``train_norm``) and the tied embedding/head (``train_embeddings``)."""
    model = copy.deepcopy(model)
    blocks = model.model.layers
    n = len(blocks)
    chosen = set()
    for i in layers:
        if not -n <= i < n:
            raise ValueError(f"Layer {i} does not exist: the model has {n} layers; pick indices "
                             f"in [-{n}, {n - 1}].")
        chosen.add(i % n)
    for p in model.parameters():
        p.requires_grad_(False)
    for i in chosen:
        blocks[i].requires_grad_(True)
    if train_norm:
        model.model.norm.requires_grad_(True)
    if train_embeddings:
        model.get_input_embeddings().requires_grad_(True)
    return model


# ----------------------------------------------------------------------------- vocabulary


def untrained_token_ids(blocks, vocab_size: int) -> torch.Tensor:
    """Ids that never occur in ``blocks`` (the pretraining data): their embeddings were only
    ever pushed *down*, as wrong answers, and never learned as inputs."""
    seen = torch.zeros(vocab_size, dtype=torch.bool)
    seen[torch.unique(blocks)] = True
    return torch.nonzero(~seen)[:, 0]


def reinit_untrained_tokens(model, token_ids, seed: int = 0):
    """A copy of ``model`` whose ``token_ids`` embeddings are redrawn from the distribution of the
    trained ones (per-dimension mean and spread; Hewitt, 2021). With tied input/output
    embeddings this also makes their logits ordinary instead of hugely negative."""
    model = copy.deepcopy(model)
    weight = model.get_input_embeddings().weight
    token_ids = torch.as_tensor(token_ids, dtype=torch.long)
    trained = torch.ones(weight.shape[0], dtype=torch.bool)
    trained[token_ids] = False
    with torch.no_grad():
        rows = weight[trained]
        mean, std = rows.mean(0), rows.std(0)
        noise = torch.randn(len(token_ids), weight.shape[1],
                            generator=torch.Generator().manual_seed(seed))
        weight[token_ids] = mean + std * noise
    return model


# ----------------------------------------------------------------------------- LoRA


def _adaptable(module) -> bool:
    """A layer LoRA can adapt: ``nn.Linear``, or transformers' ``Conv1D`` (GPT-2's attention and
    MLP: a linear layer whose weight is stored transposed, ``d_in × d_out``)."""
    return isinstance(module, (torch.nn.Linear, Conv1D))


def linear_module_names(model) -> list[str]:
    """Names (last component) of every ``nn.Linear`` or ``Conv1D`` in the model: the valid LoRA
    targets."""
    return sorted({name.split(".")[-1] for name, m in model.named_modules() if _adaptable(m)})


_NAME = re.compile(r"[\w.]+")  # a module name ("q_proj", "attn.c_attn"), not a regex


def _normalise_targets(targets):
    """``"all-linear"`` as is; one module name as a one-item list (never split into letters); any
    other string as a regex (peft full-matches it against each module's dotted path); else a list."""
    if isinstance(targets, str):
        if targets == ALL_LINEAR:
            return targets
        return [targets] if _NAME.fullmatch(targets) else targets
    return list(targets)


def lora_target_modules(model, targets=("q_proj", "v_proj")) -> dict:
    """``{dotted path: module}`` of the layers a LoRA ``targets`` spec adapts, matched the way
    peft matches: a list entry equals a path or its last components, a regex string full-matches
    a path, and ``'all-linear'`` takes every adaptable layer but the output head."""
    targets = _normalise_targets(targets)
    layers = {n: m for n, m in model.named_modules() if n and _adaptable(m)}
    if targets == ALL_LINEAR:
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        return {n: m for n, m in layers.items() if m is not head}
    if isinstance(targets, str):
        try:
            pattern = re.compile(targets)
        except re.error as err:
            raise ValueError(f"LoRA targets={targets!r} is not a valid regular expression "
                             f"({err}); pass module names such as ['q_proj', 'v_proj'] or a "
                             "valid regex.") from None
        return {n: m for n, m in layers.items() if pattern.fullmatch(n)}
    return {n: m for n, m in layers.items()
            if any(n == t or n.endswith(f".{t}") for t in targets)}


def lora_update(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float,
                rank: int) -> torch.Tensor:
    """The LoRA-adapted weight ``W + (alpha / r) · B · A``, written out."""
    return weight + (alpha / rank) * B @ A


@contextlib.contextmanager
def _quiet_peft():
    """peft 0.21 calls ``is_gradient_checkpointing``, deprecated in transformers 5: silence that
    FutureWarning where the suite calls peft, so notebooks do not print it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        # peft flips fan_in_fan_out per layer when a spec mixes Linear and Conv1D layers, and
        # warns each time; the flip is right (lora_model sets it for Conv1D), so the note is noise.
        warnings.filterwarnings("ignore", message="fan_in_fan_out is set to")
        # a base loaded from a file (GGUF) has no config.json beside it for peft to compare
        warnings.filterwarnings("ignore", message="Could not find a config file")
        yield


def lora_config(rank: int = 8, alpha: float | None = None, dropout: float = 0.0,
                targets=("q_proj", "v_proj"), trainable_tokens=None,
                fan_in_fan_out: bool = False) -> LoraConfig:
    """A checked ``peft.LoraConfig``; ``alpha`` defaults to ``2·rank`` (scale 2, as is common).

    ``targets``: a list of module names, one name as a string, ``'all-linear'``, or a regex
    string (peft full-matches it against each module's dotted path). ``fan_in_fan_out`` must be
    True for ``Conv1D`` layers (GPT-2); ``lora_model`` sets it from the model."""
    if not isinstance(rank, int) or rank <= 0:
        raise ValueError(f"LoRA rank={rank!r} must be a positive integer (try 4 or 8).")
    alpha = 2 * rank if alpha is None else alpha
    if alpha <= 0:
        raise ValueError(f"LoRA alpha={alpha!r} must be > 0 (a common choice is 2 x rank).")
    if not 0 <= dropout < 1:
        raise ValueError(f"LoRA dropout={dropout!r} must be in [0, 1) (0 is fine for small data).")
    targets = _normalise_targets(targets)
    if not targets:
        raise ValueError("LoRA targets are empty; name modules such as 'q_proj' or use 'all-linear'.")
    extra = {}
    if trainable_tokens is not None and len(trainable_tokens):
        # peft's TrainableTokens: only these rows of the (tied) embedding train.
        extra["trainable_token_indices"] = [int(i) for i in trainable_tokens]
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                      bias="none", task_type="CAUSAL_LM", fan_in_fan_out=fan_in_fan_out, **extra)


def lora_model(model, rank: int = 8, alpha: float | None = None, dropout: float = 0.0,
               targets=("q_proj", "v_proj"), trainable_tokens=None, seed: int = 0) -> PeftModel:
    """A LoRA-wrapped copy of ``model``: only the adapters train. Targets that match no module
    raise instead of silently training nothing. ``targets`` is a list of module names, one name,
    ``'all-linear'`` or a regex string; on ``Conv1D`` layers (GPT-2's ``c_attn``, ``c_proj``,
    ``c_fc``) ``fan_in_fan_out`` is set for you."""
    config = lora_config(rank, alpha, dropout, targets, trainable_tokens)
    matched = lora_target_modules(model, config.target_modules)
    available = linear_module_names(model)
    if not isinstance(config.target_modules, str):  # peft keeps a list as a set
        missing = [t for t in config.target_modules
                   if not any(n == t or n.endswith(f".{t}") for n in matched)]
        if missing:
            raise ValueError(f"LoRA target(s) {sorted(missing)} match no module of this model; "
                             f"choose from {available} or use 'all-linear'.")
    elif config.target_modules != ALL_LINEAR and not matched:
        raise ValueError(f"LoRA target regex {config.target_modules!r} matches no module path of "
                         f"this model; choose from {available} (a regex must match a whole "
                         "dotted path, such as '.*\\.(q_proj|v_proj)') or use 'all-linear'.")
    config.fan_in_fan_out = any(isinstance(m, Conv1D) for m in matched.values())
    torch.manual_seed(seed)  # A's random init
    with _quiet_peft():
        peft_model = get_peft_model(copy.deepcopy(model), config)
    if trainable_parameters(peft_model)["trainable"] == 0:
        raise ValueError(f"LoRA with targets={targets!r} left nothing trainable; choose targets "
                         f"from {linear_module_names(model)}.")
    return peft_model


def save_adapter(peft_model: PeftModel, path) -> int:
    """Save only the adapter (atomically: a temp folder renamed when complete); returns its
    size in bytes. The base model is not copied: that is the point of an adapter."""
    from ..store import atomic_folder

    with atomic_folder(path) as tmp, _quiet_peft():
        peft_model.save_pretrained(tmp)
        meta = {"base_config": _architecture(peft_model.get_base_model().config)}
        (tmp / "llmup_base.json").write_text(json.dumps(meta))
    return file_size_bytes(path)


def _architecture(config) -> dict:
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "vocab_size")
    return {k: getattr(config, k, None) for k in keys}


def load_adapter(base_model, path) -> PeftModel:
    """Attach a saved adapter to (a copy of) ``base_model``; refuses a base of another shape."""
    path = Path(path)
    if not (path / "adapter_config.json").exists():
        raise ValueError(f"{str(path)!r} holds no adapter_config.json; pass a folder written by "
                         "save_adapter.")
    meta_file = path / "llmup_base.json"
    if meta_file.exists():
        saved, now = json.loads(meta_file.read_text())["base_config"], _architecture(base_model.config)
        for key, value in saved.items():
            if now.get(key) != value:
                raise ValueError(f"The adapter in {str(path)!r} was trained on a base with {key}="
                                 f"{value}, not {now.get(key)}; load it onto the base it was "
                                 "trained from.")
    with _quiet_peft():
        return PeftModel.from_pretrained(copy.deepcopy(base_model), str(path))


def merge_adapter(peft_model: PeftModel):
    """Fold ``(alpha/r)·B·A`` into each target weight: a plain model again, no extra latency."""
    merged = copy.deepcopy(peft_model).merge_and_unload()
    # peft 0.18 (the lowest end) leaves the adapters' config on the unwrapped model, 0.21 deletes
    # it: a plain model carries none, and a second get_peft_model on it would warn.
    if hasattr(merged, "peft_config"):
        del merged.peft_config
    return merged


# ----------------------------------------------------------------------------- instruction data


def chat_prompt(tokenizer, question: str) -> str:
    """The chat-formatted prompt of one user turn, ending where the assistant starts writing."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                         add_generation_prompt=True, tokenize=False)


def chat_answer(answer: str) -> str:
    # A leading space: the answer is tokenized as it is in running text (" Oakville"), so what
    # pretraining stored under those tokens can be reused.
    return " " + answer.strip()


def instruction_rows(tokenizer, questions, answers, mask_prompt: bool = True,
                     width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` for chat examples, one example per row, right-padded.

    With ``mask_prompt`` the labels are -100 on the prompt (the model is not trained to write
    questions), so the loss is the answer's (and its closing EOS) alone.
    """
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    rows = []
    for q, a in zip(questions, answers):
        prompt = [eos, *tokenizer.encode(chat_prompt(tokenizer, q), add_special_tokens=False)]
        answer = [*tokenizer.encode(chat_answer(a), add_special_tokens=False), eos]
        rows.append((prompt, answer))
    if not rows:
        raise ValueError("No instruction examples given; pass at least one question and answer.")
    longest = max(len(p) + len(a) for p, a in rows)
    width = width or longest
    if longest > width:
        raise ValueError(f"An example has {longest} tokens, more than width={width}; raise width.")
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (p, a) in enumerate(rows):
        seq = torch.tensor(p + a)
        ids[i, :len(seq)] = seq
        first_label = len(p) if mask_prompt else 1
        labels[i, first_label:len(seq)] = seq[first_label:]
    # Next-token targets: position t predicts token t+1.
    return ids[:, :-1], labels[:, 1:]


def answer_questions(model, tokenizer, questions, max_new_tokens: int = 12) -> list[str]:
    """Greedy answers of a chat model, cut at its end-of-turn (many questions at once)."""
    from ..core.evaluate import generate_greedy

    prompts = [chat_prompt(tokenizer, q) for q in questions]
    return [text.strip() for text in generate_greedy(model, tokenizer, prompts, max_new_tokens)]


# ----------------------------------------------------------------------------- the domain task


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


def domain_scorer(profile, tokenizer):
    """``score(model)``: domain loss, domain fact accuracy and general loss (notebook 02's
    three numbers), with the data loaded once."""
    from ..core.base import general_blocks
    from ..core.evaluate import fact_accuracy
    from ..core.train import eval_loss
    from ..world.stories import make_world, world_facts

    _, domain_val = domain_blocks(profile, tokenizer)
    _, general_val = general_blocks(profile, tokenizer)
    facts = world_facts(make_world(0), "domain")

    def score(model) -> dict:
        return {"domain loss": eval_loss(model, domain_val, 32),
                "domain facts": fact_accuracy(model, tokenizer, facts)["accuracy"],
                "general loss": eval_loss(model, general_val, 32)}
    return score


def lora_cost(model, rank: int, alpha: float | None = None, targets=ALL_LINEAR,
              trainable_tokens=None) -> dict:
    """What a LoRA config would train and hold, before training: trainable parameters, their
    share, and AdamW's state (estimated, and measured on a throwaway optimizer)."""
    adapted = lora_model(model, rank, alpha, targets=targets, trainable_tokens=trainable_tokens)
    counts = trainable_parameters(adapted)
    return {**counts, "adamw_estimate_bytes": adamw_state_estimate(adapted),
            "adamw_measured_bytes": measured_optimizer_bytes(adapted)}


# ------------------------------------------------------------------ the notebooks' headline checks


