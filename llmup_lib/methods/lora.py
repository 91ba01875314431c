"""LoRA through ``peft``: checked configs, target matching (``nn.Linear`` and GPT-2's ``Conv1D``),
adapters saved atomically, reloaded onto the right base only, and merged away; plus what a
config would cost before training.

LoRA in one line: a frozen weight ``W`` (``d_out × d_in``) is used as ``W + (alpha / r) · B · A``
with ``A`` (``r × d_in``) random and ``B`` (``d_out × r``) zero at the start, so the adapted model
begins exactly as the base model and trains ``r · (d_in + d_out)`` numbers instead of
``d_in · d_out``. ``lora_update`` writes that sum out; ``peft`` does the same inside its layers.

Every helper works on a *copy* of the model it is given, so a notebook can start ten runs from the
same base model without reloading it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
import re
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers.pytorch_utils import Conv1D

from ..core.memory import adamw_state_estimate, file_size_bytes
from ..core.train import measured_optimizer_bytes
from .finetune import trainable_parameters


ALL_LINEAR = "all-linear"  # peft's shorthand: every nn.Linear except the output head


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
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) \
            or alpha <= 0:
        raise ValueError(f"LoRA alpha={alpha!r} must be a finite number > 0 (a common choice is "
                         "2 x rank).")
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


def _refuse_tied_output(model, matched: dict) -> None:
    """An adapter on an output layer that shares its weight with the input embedding would be
    merged into both (merging then changes the model): refuse it, naming the fix."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    tied = head is not None and embed is not None and head.weight is embed.weight
    for name, module in matched.items():
        if tied and module is head:
            raise ValueError(f"LoRA target {name!r} is the output layer, tied to the input "
                             "embedding (one weight for both), so merging the adapter would change "
                             "the embedding too; leave it out (e.g. targets='all-linear' skips it) "
                             "or untie the model's embeddings first.")


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
    _refuse_tied_output(model, matched)
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

    if not isinstance(peft_model, PeftModel):
        raise ValueError(f"save_adapter needs a model from lora_model, not a plain "
                         f"{type(peft_model).__name__}, which has no adapter; save a whole model "
                         "with model.save_pretrained(path).")
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


def lora_cost(model, rank: int, alpha: float | None = None, targets=ALL_LINEAR,
              trainable_tokens=None) -> dict:
    """What a LoRA config would train and hold, before training: trainable parameters, their
    share, and AdamW's state (estimated, and measured on a throwaway optimizer)."""
    adapted = lora_model(model, rank, alpha, targets=targets, trainable_tokens=trainable_tokens)
    counts = trainable_parameters(adapted)
    return {**counts, "adamw_estimate_bytes": adamw_state_estimate(adapted),
            "adamw_measured_bytes": measured_optimizer_bytes(adapted)}
