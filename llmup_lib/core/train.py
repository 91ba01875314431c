"""One short, explicit training loop: AdamW, warmup + cosine, gradient clipping, periodic eval,
atomic checkpoints with exact resume, and a metrics history to plot.

It runs on ``accelerate``, so the same code trains on a CPU, a GPU, or several processes
(``accelerate launch --num_processes 2 ...`` or ``torchrun``): each process takes its slice of
the global batch and DDP averages the gradients, which equals the one-process gradient.

Batches are a pure function of ``(seed, step)``: the loop needs no sampler state, so a resumed
run sees exactly the batches the uninterrupted run would have seen.

The loss is a hook: ``train(..., loss_fn=...)`` replaces next-token cross-entropy with any loss
of ``(model, inputs, labels)`` (distillation's ``kd_loss`` is one, see ``llmup_lib.methods.distill``),
and every run, whatever its loss, gets the same schedule, clipping, accelerate/DDP, memory
guard, atomic checkpoints, exact resume and timing.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from .checkpoint import load_checkpoint, save_checkpoint
from .progress import finish, progress

# The keys that define the optimisation trajectory; a checkpoint resumes only if they all match.
RECIPE_KEYS = ("steps", "batch_size", "lr", "warmup_steps", "min_lr_ratio", "weight_decay",
               "betas", "grad_clip", "seed")


@dataclass
class TrainConfig:
    steps: int
    batch_size: int  # global batch, in blocks, split across processes
    lr: float
    warmup_steps: int | None = None  # default: 5% of steps
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: evaluate once, at the end
    eval_batches: int = 8
    log_every: int = 10
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0  # 0: only at the end (when checkpoint_dir is set)
    keep_checkpoints: int = 2
    progress: bool = True
    # torch.compile the model for the training steps (eval stays eager). The first step pays the
    # compilation: TrainResult.compile_seconds reports it, and tokens_per_second leaves it out.
    compile: bool = False
    # AdamW's fused kernel (one kernel for every weight's update instead of a loop of ops):
    # measured 1.09x eager and 1.58x with compile on the char model (benchmarks/bench_compile.py),
    # so it comes with compile=True; None = only with compile, True/False = always/never. Its
    # rounding differs from the default AdamW's, so the eager default stays as it was.
    fused_adamw: bool | None = None
    # Refuse, before step 1, a run whose estimated memory exceeds what is free (llmup_lib.core.memory).
    memory_check: bool = field(default=True, repr=False)

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive whole number; pass e.g. "
                                 f"{name}={'100' if name == 'steps' else '8'}.")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real) \
                or not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr={self.lr!r} must be a positive finite number; pass e.g. "
                             "lr=1e-3 (1e-4 to 1e-2 suits the suite's models).")
        if self.fused_adamw not in (None, True, False):
            raise ValueError(f"fused_adamw={self.fused_adamw!r} must be True, False or None "
                             "(fused only with compile=True); pass e.g. fused_adamw=True.")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile={self.compile!r} must be True or False; pass "
                             "compile=True to train through torch.compile.")
        self._validate_schedule()
        if self.warmup_steps is None:
            self.warmup_steps = max(1, self.steps // 20)
        self.betas = tuple(self.betas)

    def _validate_schedule(self) -> None:
        """Settings that would silently train wrong (a negative clip is gradient ascent, a floor
        below zero a negative rate, no checkpoint kept deletes the one just written) are refused
        here, when the config is built, in one sentence each."""
        def whole(name, low, example):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name}={value!r} must be a whole number >= {low}; pass e.g. "
                                 f"{name}={example}.")

        whole("log_every", 1, 10)
        whole("eval_every", 0, "0 (evaluate once, at the end) or 50")
        whole("checkpoint_every", 0, "0 (only at the end) or 100")
        whole("keep_checkpoints", 1, 2)
        if self.eval_batches is not None:
            whole("eval_batches", 1, 8)
        if self.warmup_steps is not None:
            whole("warmup_steps", 0, "0 or 20")
        for name, low, high, example in (("grad_clip", 0.0, math.inf, "1.0 (0 turns clipping off)"),
                                         ("min_lr_ratio", 0.0, 1.0, "0.1"),
                                         ("weight_decay", 0.0, math.inf, "0.1")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"{name}={value!r} must be a finite number in [{low:g}, {high:g}]; "
                                 f"pass e.g. {name}={example}.")
        if self.checkpoint_dir is not None and Path(self.checkpoint_dir).is_file():
            raise ValueError(f"checkpoint_dir={str(self.checkpoint_dir)!r} is a file, not a folder; "
                             "pass the path of a folder (it is created if missing).")

    def recipe(self) -> dict:
        d = asdict(self)
        return {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in RECIPE_KEYS}


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list = field(default_factory=list)  # dicts: step, train_loss, lr, tokens, val_loss
    tokens_per_second: float = 0.0
    seconds: float = 0.0
    optimizer_bytes: int = 0  # measured: the optimizer's state tensors at the end of the run
    # with TrainConfig(compile=True): the first step's wall time, which holds torch.compile's
    # compilation (forward and backward graphs); seconds includes it, tokens_per_second does not
    compile_seconds: float = 0.0

    def series(self, key: str) -> tuple[list, list]:
        """(steps, values) of one metric, ready for ``plt.plot``."""
        rows = [r for r in self.history if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    @property
    def final_val_loss(self) -> float | None:
        values = self.series("val_loss")[1]
        return values[-1] if values else None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def batch_indices(step: int, n_blocks: int, batch_size: int, seed: int) -> torch.Tensor:
    """Rows of the global batch at ``step``: epochs of seeded permutations, walked in order."""
    start = step * batch_size
    idx = []
    while len(idx) < batch_size:
        epoch, offset = divmod(start + len(idx), n_blocks)
        perm = torch.randperm(n_blocks, generator=torch.Generator().manual_seed(seed + epoch))
        idx.extend(perm[offset:offset + batch_size - len(idx)].tolist())
    return torch.tensor(idx)


def split_blocks(blocks) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token labels from ``[n, T+1]`` token blocks or an ``(inputs, labels)``
    pair (labels -100 are ignored, e.g. a masked prompt)."""
    if isinstance(blocks, torch.Tensor):
        return blocks[:, :-1], blocks[:, 1:]
    inputs, labels = blocks
    return inputs, labels


def causal_lm_loss(model, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy. Labels are already shifted, so no copy is made."""
    logits = model(input_ids=inputs).logits
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def compile_unavailable() -> str | None:
    """Why ``torch.compile`` cannot run here, in a few words, or ``None`` when it can."""
    if not hasattr(torch, "compile"):
        return f"PyTorch {torch.__version__} has no torch.compile (it arrived in 2.0)"
    try:
        import torch._dynamo as dynamo
    except ImportError as err:  # a stripped or broken build
        return f"torch._dynamo cannot be imported ({err})"
    if not dynamo.is_dynamo_supported():
        import sys

        return (f"torch.compile does not support Python {sys.version_info.major}."
                f"{sys.version_info.minor} on this PyTorch {torch.__version__}")
    return None


def compile_model(model):
    """``torch.compile(model)`` (a wrapper sharing the model's parameters), or one clear error
    when this PyTorch cannot compile."""
    why = compile_unavailable()
    if why is not None:
        raise RuntimeError(f"compile=True needs torch.compile, but {why}; pass compile=False "
                           "to train eagerly (same numbers, a little slower), or install "
                           "PyTorch >= 2.0 on a supported Python.")
    return torch.compile(model)


def validate_token_ids(model, inputs: torch.Tensor) -> None:
    """Refuse token ids the model has no embedding for (blocks made with another tokenizer),
    which torch would report as a bare ``IndexError`` deep inside the embedding."""
    vocab = model.get_input_embeddings().weight.shape[0]  # also through peft's token wrapper
    top = int(inputs.max())
    if top >= vocab or int(inputs.min()) < 0:
        raise ValueError(f"The blocks hold token id {top}, but the model's vocabulary has only "
                         f"{vocab} ids; tokenize the text with the model's own tokenizer (or "
                         "build the model with this tokenizer).")


def validate_context(model, width: int) -> None:
    """Refuse blocks longer than the model's positions: some models raise a bare IndexError on
    them, others (rotary) train on silently, past the lengths they were built for."""
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if isinstance(limit, int) and width > limit:
        raise ValueError(f"The blocks hold {width} tokens each, but the model has only {limit} "
                         f"positions; pack the text into blocks of at most {limit} tokens (e.g. "
                         f"pack_blocks(texts, tokenizer, {limit - 1})) or build a model with a "
                         "longer context.")


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norm gains and biases are not decayed)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("The model has no trainable parameters; unfreeze some before training.")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = getattr(cfg, "fused_adamw", None)
    if fused or (fused is None and getattr(cfg, "compile", False)):
        try:
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
            pass
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def optimizer_state_bytes(optimizer) -> int:
    """Bytes held by an optimizer's state tensors (AdamW: two moments per trainable weight)."""
    return sum(t.numel() * t.element_size() for state in optimizer.state.values()
               for t in state.values() if torch.is_tensor(t))


def measured_optimizer_bytes(model, cfg=None) -> int:
    """Measure AdamW's state for ``model`` by taking one zero-gradient step on a throwaway
    optimizer (``cfg``: a ``TrainConfig``, default lr 1e-3): the tensors it allocates are the
    state a real run would hold."""
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


@torch.no_grad()
def eval_loss(model, blocks, batch_size: int, max_batches: int | None = None) -> float:
    """Mean token loss (nats) over the first ``max_batches`` batches of ``blocks``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be a positive whole number; pass "
                         "e.g. 16.")
    was_training = model.training
    model.eval()
    inputs, labels = split_blocks(blocks)
    validate_context(model, inputs.shape[1])
    device = next(model.parameters()).device
    total, count = 0.0, 0
    n = len(inputs) if max_batches is None else min(len(inputs), max_batches * batch_size)
    for i in range(0, n, batch_size):
        x, y = inputs[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)
        loss = causal_lm_loss(model, x, y)
        tokens = int((y != -100).sum())
        total, count = total + float(loss) * tokens, count + tokens
    model.train(was_training)
    if count == 0:
        raise ValueError("No validation tokens to score: the blocks are empty (a corpus shorter "
                         "than one context window?); pass blocks with at least one row.")
    return total / count


def _diverged(step: int, cfg: TrainConfig, what: str) -> str:
    kept = (f" The last good checkpoint in {str(cfg.checkpoint_dir)!r} is kept."
            if cfg.checkpoint_dir else "")
    return (f"Training diverged: {what} became NaN or infinite at step {step + 1} (learning rate "
            f"{lr_at(step, cfg):.3g}); the likely cause is a learning rate too high for this model, "
            f"so lower lr (e.g. {cfg.lr / 10:.3g}) or keep grad_clip on.{kept}")


def train(model, train_blocks, val_blocks=None, cfg: TrainConfig | None = None,
          accelerator: Accelerator | None = None, loss_fn=None, memory_guard=None,
          loss_recipe: dict | None = None, **overrides) -> TrainResult:
    """Train ``model`` on token blocks; returns the (unwrapped) model and its history.

    With ``cfg.checkpoint_dir`` set, checkpoints are written atomically and an existing one is
    resumed from, exactly: the resumed run ends with the weights of an uninterrupted one.

    Hooks (all optional; ``llmup_lib.methods.distill`` uses them):

    * ``loss_fn(model, inputs, labels, rows=..., step=...)`` returns the loss of one batch (a
      scalar tensor), or ``(loss, logs)`` where ``logs`` is a dict of numbers added to the
      history at logging steps. ``rows`` are the indices of this process's blocks in
      ``train_blocks`` (what a cache of per-block targets needs), ``step`` the 0-based step.
      Default: next-token cross-entropy (``causal_lm_loss``).
    * ``memory_guard(model, batch_size, context, device)`` replaces the memory check (it raises
      ``MemoryError`` when the run cannot fit); it runs before step 1 when ``cfg.memory_check``.
    * ``loss_recipe``: a JSON-able dict that defines the loss (e.g. α and T); it is saved in
      checkpoints and a resume with a different one is refused, like a different ``lr``.
    """
    cfg = replace(cfg, **overrides) if cfg else TrainConfig(**overrides)
    accelerator = accelerator or Accelerator()
    world, rank = accelerator.num_processes, accelerator.process_index
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} does not split over {world} processes; "
                         f"use a multiple of {world}.")
    local = cfg.batch_size // world
    inputs, labels = split_blocks(train_blocks)
    if len(inputs) == 0:
        raise ValueError("No training blocks: the corpus is shorter than one context window.")
    validate_token_ids(model, inputs)
    validate_context(model, inputs.shape[1])
    if val_blocks is not None and len(val_blocks) == 0:
        raise ValueError("val_blocks is empty, so no validation loss can be measured; pass "
                         "validation blocks, or val_blocks=None to train without one.")

    torch.manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model)
    # the training steps run through the compiled wrapper (lazy: it compiles on the first
    # step); evaluation, checkpoints and the result use the plain model, which shares its weights
    step_model = compile_model(model) if cfg.compile else model
    if cfg.memory_check:  # microseconds: a formula and one read of /proc/meminfo
        if memory_guard is not None:
            memory_guard(raw, local, inputs.shape[1], accelerator.device)
        else:
            from .memory import estimate_training_memory, validate_fits

            validate_fits(estimate_training_memory(raw, local, inputs.shape[1]),
                          device=accelerator.device, weights_loaded=True)
    result = TrainResult(model=raw)
    start = 0
    if cfg.checkpoint_dir:
        start, result.history = load_checkpoint(cfg.checkpoint_dir, raw, optimizer, cfg,
                                                loss_recipe=loss_recipe)

    model.train()
    tokens_per_step = int((labels[:1] != -100).sum()) * cfg.batch_size  # exact for packed text
    bar = progress(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train",
                   disable=not (cfg.progress and accelerator.is_main_process))
    train_time = 0.0
    for step in bar:
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        rows = batch_indices(step, len(inputs), cfg.batch_size, cfg.seed)[rank * local:(rank + 1) * local]
        x, y = inputs[rows].to(accelerator.device), labels[rows].to(accelerator.device)
        logs = None
        if loss_fn is None:
            loss = causal_lm_loss(step_model, x, y)
        else:
            loss = loss_fn(step_model, x, y, rows=rows, step=step)
            if isinstance(loss, tuple):
                loss, logs = loss
        if not torch.isfinite(loss.detach()).all():
            raise FloatingPointError(_diverged(step, cfg, "the loss"))
        accelerator.backward(loss)
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cfg.compile and step == start:
            float(loss.detach())  # wait for the step (a GPU runs ahead) before reading the clock
            result.compile_seconds = time.perf_counter() - t0
        train_time += time.perf_counter() - t0

        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            mean_loss = float(accelerator.reduce(loss.detach(), "mean"))
            row = {"step": done, "train_loss": mean_loss}
            if logs:  # the hook's own terms (this process's values)
                row.update({k: float(v) for k, v in logs.items()})
            row.update({"lr": lr_at(step, cfg), "tokens": done * tokens_per_step})
            result.history.append(row)
            bar.set_postfix(loss=f"{mean_loss:.3f}")
        if val_blocks is not None and ((cfg.eval_every and done % cfg.eval_every == 0)
                                       or done == cfg.steps):
            val = eval_loss(raw, val_blocks, local, cfg.eval_batches)
            result.history.append({"step": done, "val_loss": val})
        if cfg.checkpoint_dir and ((cfg.checkpoint_every and done % cfg.checkpoint_every == 0)
                                   or done == cfg.steps):
            if not all(torch.isfinite(w).all() for w in raw.parameters()):
                raise FloatingPointError(_diverged(step, cfg, "the weights"))
            if accelerator.is_main_process:
                save_checkpoint(cfg.checkpoint_dir, raw, optimizer, cfg, done, result.history,
                                loss_recipe=loss_recipe)
            accelerator.wait_for_everyone()
    last = [row["train_loss"] for row in result.history if "train_loss" in row]
    finish(bar, f"train: {cfg.steps}/{cfg.steps} steps"
           + (f", train loss {last[-1]:.3f}" if last else ""))
    result.seconds = train_time
    result.optimizer_bytes = optimizer_state_bytes(optimizer)
    steps_run = cfg.steps - start
    steady_steps, steady_time = steps_run, train_time
    if result.compile_seconds and steps_run > 1:  # steady state: without the compiling step
        steady_steps, steady_time = steps_run - 1, train_time - result.compile_seconds
    result.tokens_per_second = steady_steps * tokens_per_step / steady_time if steady_time else 0.0
    return result
