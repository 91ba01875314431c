"""Knowledge distillation: a big teacher's knowledge in a small, cheap student.

The student learns from the teacher's whole next-token distribution ("soft targets") instead of
only the one token the text happened to contain ("hard labels"). With temperature ``T``
(Hinton et al., 2015):

    p_T = softmax(z_teacher / T),   q_T = softmax(z_student / T)
    loss = α · T² · KL(p_T ‖ q_T)  +  (1 − α) · CE(labels, q_1)

* ``T > 1`` softens both distributions, so the teacher's ranking of the *wrong* tokens (which
  names are plausible here, which are not) carries more weight.
* The gradient of ``KL(p_T ‖ q_T)`` with respect to the student's logits is ``(q_T − p_T) / T``,
  and ``q_T − p_T`` itself shrinks like ``1 / T``, so the gradient shrinks like ``1 / T²``.
  The ``T²`` factor undoes that: the distillation term keeps its weight against the hard-label
  term whatever the temperature (``test_t_squared_keeps_gradient_scale`` measures it).
* ``forward`` KL, ``KL(teacher ‖ student)``, is *mass-covering*: the student is punished
  wherever the teacher has mass and the student has none, so it spreads out. ``reverse`` KL,
  ``KL(student ‖ teacher)``, is *mode-seeking*: it is punished for mass where the teacher has
  none, so it may concentrate on one mode. The generalized Jensen–Shannon divergence ``jsd``
  with weight ``β`` lies between them (Agarwal et al., 2024, "GKD").

Also here: distillation as ``train()`` with a loss hook (``kd_loss_fn``: the teacher runs
without gradients, on the fly or from a cache of its hidden states; one loop, so distillation
gets accelerate, checkpoints, exact resume and the memory guard), sequence-level KD (train on
text the teacher wrote; Kim & Rush, 2016), an on-policy variant (the student writes, the
teacher scores), and what deployment cares about: size on disk, latency, throughput and int8
dynamic quantization.
"""

from __future__ import annotations

import inspect
import io
import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.evaluate import generation_times
from ..core.train import TrainConfig, TrainResult, causal_lm_loss, eval_loss, split_blocks, train

DIVERGENCES = ("forward", "reverse", "jsd")


# ----------------------------------------------------------------------------- input checks
def check_temperature(temperature) -> float:
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be a positive number (1 is the plain "
                         "softmax, 2-4 soften it); pass a value > 0.")
    return float(temperature)


def check_alpha(alpha) -> float:
    if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha={alpha!r} is outside [0, 1]; it weights the distillation term "
                         "against the hard-label loss, so pass a value from 0 (labels only) to "
                         "1 (teacher only).")
    return float(alpha)


def check_t_squared(t_squared) -> bool:
    if not isinstance(t_squared, bool):
        raise ValueError(f"t_squared={t_squared!r} must be True (Hinton's loss, the default) or "
                         "False (the soft term without its T² factor).")
    return t_squared


def check_vocab(student_size: int, teacher_size: int) -> None:
    if student_size != teacher_size:
        raise ValueError(f"The student has {student_size} output logits but the teacher has "
                         f"{teacher_size}: logit distillation needs the same tokenizer; use a "
                         "teacher with the student's vocabulary, or sequence-level KD (train on "
                         "the teacher's text, re-tokenized).")


def _check_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    check_vocab(student_logits.shape[-1], teacher_logits.shape[-1])
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"Student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape; pass both for the same "
                         "batch of positions.")


def _mean(per_token: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return per_token.mean()
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def _tempered_log_probs(student_logits, teacher_logits, temperature):
    """``(T, log q_T, log p_T)``: the checked temperature and both log-softmaxes at it, in fp32."""
    T = check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    return (T, F.log_softmax(student_logits.float() / T, dim=-1),
            F.log_softmax(teacher_logits.float() / T, dim=-1))


def _kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """``KL(a ‖ b)`` per position, from log-probabilities, summed over the vocabulary."""
    return (log_a.exp() * (log_a - log_b)).sum(-1)


# ----------------------------------------------------------------------------- the losses
def soften(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``softmax(logits / T)``: the softened distribution the student is asked to match."""
    return torch.softmax(logits.float() / check_temperature(temperature), dim=-1)


def forward_kl(student_logits, teacher_logits, temperature: float = 1.0, mask=None):
    """``T² · KL(p_T ‖ q_T)``, summed over the vocabulary, averaged over positions (where
    ``mask`` is true). Zero when the student's logits equal the teacher's."""
    T, log_q, log_p = _tempered_log_probs(student_logits, teacher_logits, temperature)
    return T * T * _mean(_kl(log_p, log_q), mask)


def reverse_kl(student_logits, teacher_logits, temperature: float = 1.0, mask=None):
    """``T² · KL(q_T ‖ p_T)``: the student's own distribution weighs the log-ratio, so mass the
    student puts where the teacher has none is what costs most (mode-seeking)."""
    T, log_q, log_p = _tempered_log_probs(student_logits, teacher_logits, temperature)
    return T * T * _mean(_kl(log_q, log_p), mask)


def jsd(student_logits, teacher_logits, temperature: float = 1.0, beta: float = 0.5, mask=None):
    """Generalized Jensen–Shannon divergence, times ``T²``:
    ``β·KL(p ‖ m) + (1−β)·KL(q ‖ m)`` with ``m = β·p + (1−β)·q``. Bounded (at most
    ``ln 2`` per token for β = ½, before the T² factor) and symmetric at β = ½."""
    T = check_temperature(temperature)
    if not isinstance(beta, (int, float)) or not 0 < beta < 1:
        raise ValueError(f"beta={beta!r} must lie strictly between 0 and 1 (0.5 is the "
                         "symmetric Jensen-Shannon divergence); pass e.g. 0.5.")
    _, log_q, log_p = _tempered_log_probs(student_logits, teacher_logits, T)
    log_m = torch.logsumexp(torch.stack([log_p + math.log(beta), log_q + math.log(1 - beta)]), 0)
    return T * T * _mean(beta * _kl(log_p, log_m) + (1 - beta) * _kl(log_q, log_m), mask)


def divergence_fn(name: str):
    funcs = {"forward": forward_kl, "reverse": reverse_kl, "jsd": jsd}
    if name not in funcs:
        raise ValueError(f"divergence={name!r} is unknown; choose one of {', '.join(DIVERGENCES)}.")
    return funcs[name]


def kd_loss(student_logits, teacher_logits, labels, alpha: float = 0.5, temperature: float = 2.0,
            divergence: str = "forward", beta: float = 0.5, return_parts: bool = False,
            t_squared: bool = True):
    """``α · D_T(teacher, student) + (1 − α) · CE(labels, student)``.

    ``D_T`` is ``forward_kl`` (Hinton's KD), ``reverse_kl`` or ``jsd``, each with its ``T²``.
    Positions whose label is -100 are ignored by both terms. With ``return_parts`` also returns
    the two terms, detached, for logging. ``t_squared=False`` drops the ``T²`` factor: the
    mistake notebook 06 measures (the soft term's gradients shrink by ``1/T²``).
    """
    alpha = check_alpha(alpha)
    div = divergence_fn(divergence)
    check_t_squared(t_squared)
    mask = labels != -100
    kwargs = {"beta": beta} if divergence == "jsd" else {}
    soft = div(student_logits, teacher_logits, temperature, mask=mask, **kwargs)
    if not t_squared:
        soft = soft / float(temperature) ** 2
    with torch.set_grad_enabled(torch.is_grad_enabled() and alpha < 1):  # α = 1: only logged
        hard = F.cross_entropy(student_logits.flatten(0, -2).float(), labels.flatten(),
                               ignore_index=-100)
    total = soft if alpha == 1 else alpha * soft + (1 - alpha) * hard
    return (total, float(soft.detach()), float(hard.detach())) if return_parts else total


# ----------------------------------------------------------------------------- the teacher
class TeacherCache:
    """The teacher's outputs for every training block, computed once and reused by every student.

    Full logits are ``blocks × context × vocab`` floats: fine for a small transfer set, but
    1.2 GB for the cpu profile's whole general corpus. The teacher's last hidden states are
    ``context × width`` (128 instead of 1,024 numbers per position), and one matmul with its output
    layer turns them back into the exact logits. So the cache keeps logits when they fit in
    ``max_logits_mb`` and hidden states otherwise, and either way the teacher's forward pass is
    paid once instead of once per step of every student. (Hidden states need a plain linear
    head, as in Llama and GPT-NeoX.)
    """

    def __init__(self, teacher, blocks, batch_size: int = 32, max_logits_mb: float = 256,
                 progress: bool = True):
        inputs, _ = split_blocks(blocks)
        self.head = teacher.get_output_embeddings()
        self.vocab_size = self.head.weight.shape[0]
        self.n_blocks = len(inputs)
        self.stores = ("logits" if inputs.numel() * self.vocab_size * 4 / 2**20 <= max_logits_mb
                       else "hidden")
        device = self.head.weight.device
        was_training = teacher.training
        teacher.eval()
        parts = []
        with torch.no_grad():
            for i in tqdm(range(0, len(inputs), batch_size), desc="teacher", disable=not progress):
                x = inputs[i:i + batch_size].to(device)
                if self.stores == "logits":
                    parts.append(teacher(input_ids=x).logits.float().cpu())
                else:
                    hidden = teacher.get_decoder()(input_ids=x).last_hidden_state
                    parts.append(hidden.float().cpu())
        teacher.train(was_training)
        self.values = torch.cat(parts)

    @property
    def nbytes(self) -> int:
        return self.values.numel() * self.values.element_size()

    @torch.no_grad()
    def logits(self, rows: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for training blocks ``rows``: ``[len(rows), context, vocab]``."""
        if self.stores == "logits":
            return self.values[rows].to(self.head.weight.device)
        return self.head(self.values[rows].to(self.head.weight.device)).float()


def teacher_vocab(teacher) -> int:
    if isinstance(teacher, TeacherCache):
        return teacher.vocab_size
    return teacher.get_output_embeddings().weight.shape[0]


# ----------------------------------------------------------------------------- training
def check_distill_fits(student, batch_size: int, context: int, device=None) -> dict:
    """``train()``'s memory guard for a distillation step: the student's training memory plus
    the teacher's side of the loss, its logits and their softmax for one batch (the teacher's
    weights are already loaded, and a ``TeacherCache`` is already in memory). Raises
    ``MemoryError`` when that cannot fit; returns the estimate."""
    from ..core.memory import check_fits, estimate_training_memory

    estimate = estimate_training_memory(student, batch_size, context)
    vocab = student.get_output_embeddings().weight.shape[0]
    teacher_side = 2 * batch_size * context * vocab * 4  # fp32 logits + softmax
    estimate["activations"] += teacher_side
    estimate["total"] += teacher_side
    check_fits(estimate, device=device, weights_loaded=True)
    return estimate


def _teacher_logits(teacher, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The teacher's logits for the batch ``x`` (blocks ``rows`` of the training set), on
    ``x``'s device: from a ``TeacherCache``, or a forward pass without gradients (the teacher may
    live on another device than the student)."""
    if isinstance(teacher, TeacherCache):
        return teacher.logits(rows.cpu()).to(x.device)
    with torch.no_grad():
        t_device = teacher.get_output_embeddings().weight.device
        return teacher(input_ids=x.to(t_device)).logits.to(x.device)


def kd_loss_fn(teacher, alpha: float = 1.0, temperature: float = 1.0, divergence: str = "forward",
               beta: float = 0.5, t_squared: bool = True):
    """``train()``'s loss hook for logit distillation: the teacher's logits (no gradients),
    then ``kd_loss``; the two terms are logged as ``kd`` and ``ce``. With ``alpha=0`` the teacher
    is never called and the loss is ``train()``'s own next-token cross-entropy."""
    alpha = check_alpha(alpha)
    check_temperature(temperature)
    divergence_fn(divergence)
    check_t_squared(t_squared)

    def loss_fn(model, x, y, rows, step):
        if alpha == 0:  # no teacher at all: plain next-token cross-entropy
            loss = causal_lm_loss(model, x, y)
            return loss, {"kd": 0.0, "ce": float(loss.detach())}
        t_logits = _teacher_logits(teacher, x, rows)
        loss, soft, hard = kd_loss(model(input_ids=x).logits, t_logits, y, alpha, temperature,
                                   divergence, beta, return_parts=True, t_squared=t_squared)
        return loss, {"kd": soft, "ce": hard}

    return loss_fn


def distill(student, teacher, train_blocks, val_blocks=None, cfg: TrainConfig | None = None,
            alpha: float = 1.0, temperature: float = 1.0, divergence: str = "forward",
            beta: float = 0.5, t_squared: bool = True, **overrides) -> TrainResult:
    """Train ``student`` to match ``teacher`` on ``train_blocks``: ``train()`` itself (same
    schedule, same batches for the same seed, same clipping, accelerate/DDP, atomic checkpoints
    and exact resume, the same timing), with ``kd_loss`` as its loss hook.

    ``teacher`` is a model, run under ``torch.no_grad()`` on each batch, or a ``TeacherCache``
    of the same ``train_blocks`` (much faster when several students share one teacher). With
    ``alpha=0`` this is exactly training from scratch. History rows also hold ``kd`` and ``ce``,
    the two terms of the loss. The memory guard counts the teacher's logits
    (``check_distill_fits``); ``tokens_per_second`` counts training steps only, not evaluation.
    """
    cfg = replace(cfg, **overrides) if cfg else TrainConfig(**overrides)
    loss_fn = kd_loss_fn(teacher, alpha, temperature, divergence, beta, t_squared)
    check_vocab(student.get_output_embeddings().weight.shape[0], teacher_vocab(teacher))
    inputs, _ = split_blocks(train_blocks)
    if isinstance(teacher, TeacherCache) and teacher.n_blocks != len(inputs):
        raise ValueError(f"The TeacherCache holds {teacher.n_blocks} blocks but "
                         f"train_blocks has {len(inputs)}; build the cache from these blocks.")
    if not isinstance(teacher, TeacherCache):
        teacher.eval()  # the teacher never trains: no dropout, no gradients
    recipe = {"loss": "kd", "alpha": float(alpha), "temperature": float(temperature),
              "divergence": divergence, "beta": float(beta), "t_squared": bool(t_squared)}
    return train(student, train_blocks, val_blocks, cfg, loss_fn=loss_fn,
                 memory_guard=check_distill_fits, loss_recipe=recipe)


def gap_closed(scratch_loss: float, student_loss: float, teacher_loss: float) -> float:
    """The fraction of the scratch-student → teacher loss gap that distillation closes:
    0 = no better than training without a teacher, 1 = as good as the teacher."""
    gap = scratch_loss - teacher_loss
    if gap <= 0:
        raise ValueError(f"The scratch student's loss {scratch_loss:.4f} is not above the "
                         f"teacher's {teacher_loss:.4f}, so there is no gap to close; compare "
                         "against a stronger teacher.")
    return (scratch_loss - student_loss) / gap


# ------------------------------------------------------------------- notebook 06's students, tuned
STUDENT, STUDENT_STEPS, N_TRANSFER = "nano", 200, 96
# scratch / kd: the nano student without and with the teacher; kd-half / kd-half-init: half the
# teacher's layers at its width (DistilBERT's shape), from random weights or from the teacher's
# every other layer (DistilBERT's initialisation), both by logit KD; t4-with-t2 / t4-without-t2:
# notebook 06's T² experiment, the nano student at alpha 0.9 and T = 4 with and without the
# factor. Each method's distill() settings (the defaults: alpha 1, T 1, with T²):
DISTILL_SETTINGS = {"scratch": {"alpha": 0.0}, "kd": {}, "kd-half": {}, "kd-half-init": {},
                    "t4-with-t2": {"alpha": 0.9, "temperature": 4.0},
                    "t4-without-t2": {"alpha": 0.9, "temperature": 4.0, "t_squared": False}}
DISTILL_METHODS = tuple(DISTILL_SETTINGS)


def transfer_set(train_blocks: torch.Tensor, seed: int, n_blocks: int | None = None):
    """Notebook 06's transfer set: ``n_blocks`` (``N_TRANSFER``) of the teacher's training
    blocks, drawn by ``seed``."""
    n_blocks = N_TRANSFER if n_blocks is None else n_blocks
    order = torch.randperm(len(train_blocks), generator=torch.Generator().manual_seed(seed))
    return train_blocks[order[:n_blocks]]


def half_depth_student(teacher, from_teacher: bool = True, seed: int = 0):
    """A student with every other layer of ``teacher`` (layers 0, 2, ...) at the teacher's
    width. ``from_teacher`` copies those layers, the embeddings and the final norm (DistilBERT's
    initialisation, Sanh et al. 2019); otherwise the same shape from random weights."""
    from transformers import LlamaForCausalLM

    keep = list(range(0, teacher.config.num_hidden_layers, 2))
    config = teacher.config.__class__.from_dict(
        {**teacher.config.to_dict(), "num_hidden_layers": len(keep)})
    torch.manual_seed(seed)
    student = LlamaForCausalLM(config).to(next(teacher.parameters()).device)
    if from_teacher:
        state = teacher.state_dict()
        renamed = {}
        for name, value in state.items():
            if name.startswith("model.layers."):
                index, rest = name[len("model.layers."):].split(".", 1)
                if int(index) not in keep:
                    continue
                name = f"model.layers.{keep.index(int(index))}.{rest}"
            renamed[name] = value
        student.load_state_dict(renamed)
    return student


def distill_tuning_data(profile, tokenizer) -> dict:
    """What every notebook-06 student run needs, loaded once: the teacher (the base model), the
    transfer set, its teacher cache and the validation blocks."""
    from ..core.base import general_blocks, load_base_model

    teacher = load_base_model(profile, progress=False)
    train_blocks, val_blocks = general_blocks(profile, tokenizer)
    transfer = transfer_set(train_blocks, profile.seed)
    return {"teacher": teacher, "transfer": transfer, "val": val_blocks,
            "cache": TeacherCache(teacher, transfer, progress=False), "tokenizer": tokenizer,
            "teacher_loss": eval_loss(teacher, val_blocks, 16)}


def distill_student(method: str, data: dict, profile):
    """A fresh student for ``method``; its initial weights are the same for every seed (the
    seed sets the batch order), as in notebook 06."""
    from ..core.models import build_model

    if not method.startswith("kd-half"):
        model = build_model(STUDENT, data["tokenizer"], profile.context, seed=profile.seed)
        return model.to(profile.torch_device())
    return half_depth_student(data["teacher"], from_teacher=method == "kd-half-init",
                              seed=profile.seed)


def distill_tune_run(method: str, lr: float, seed: int, data: dict, profile) -> dict:
    """Train one notebook-06 student (``method``, rate, batch-order ``seed``) and score it."""
    import time

    cfg = TrainConfig(steps=STUDENT_STEPS, batch_size=profile.batch_size, lr=lr, seed=seed,
                      eval_every=STUDENT_STEPS, eval_batches=16, progress=False)
    start = time.perf_counter()
    settings = {"alpha": 1.0, "temperature": 1.0, **DISTILL_SETTINGS[method]}
    result = distill(distill_student(method, data, profile), data["cache"], data["transfer"],
                     data["val"], cfg, **settings)
    return {"method": method, "lr": lr, "seed": seed, "steps": STUDENT_STEPS,
            "val_loss": result.final_val_loss,
            "train_seconds": round(time.perf_counter() - start, 1)}


# ----------------------------------------------------------------------------- text from a model
def _cache_kwarg(model, output) -> dict:
    """The KV cache to pass back: ``cache=`` in transformers >= 5.2x, ``past_key_values=`` before
    and in models not yet renamed."""
    if "cache" in inspect.signature(model.forward).parameters and hasattr(output, "cache"):
        return {"cache": output.cache}
    return {"past_key_values": output.past_key_values}


@torch.no_grad()
def sample_blocks(model, n_blocks: int, context: int, bos_token_id: int, temperature: float = 1.0,
                  batch_size: int = 128, seed: int = 0, progress: bool = False) -> torch.Tensor:
    """``[n_blocks, context + 1]`` token blocks written by ``model``, each starting at a document
    boundary and sampled at ``temperature`` with the KV cache. Generation does not stop at EOS:
    the model starts the next document, as in packed training blocks.

    This is the data of sequence-level KD (the teacher writes, the student reads) and of
    on-policy distillation (the student writes, the teacher scores).
    """
    T = check_temperature(temperature)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for start in tqdm(range(0, n_blocks, batch_size), desc="sample", disable=not progress):
        b = min(batch_size, n_blocks - start)
        ids = torch.full((b, 1), bos_token_id, dtype=torch.long, device=device)
        step = model(input_ids=ids, use_cache=True)
        for i in range(context):
            probs = torch.softmax(step.logits[:, -1].float() / T, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)
            ids = torch.cat([ids, nxt], dim=1)
            if i + 1 < context:
                step = model(input_ids=nxt, use_cache=True, **_cache_kwarg(model, step))
        out.append(ids.cpu())
    model.train(was_training)
    return torch.cat(out)


def distill_on_policy(student, teacher, cfg: TrainConfig, context: int, bos_token_id: int,
                      divergence: str = "reverse", temperature: float = 1.0,
                      sample_temperature: float = 1.0, resample_every: int = 1) -> TrainResult:
    """On-policy distillation (GKD, MiniLLM): every ``resample_every`` steps the *student* writes
    a batch of blocks, the teacher scores every position, and the student moves its
    distribution toward the teacher's on its own text, so it learns to recover from its own
    mistakes. Reverse KL is the usual choice here. Costly: sampling is sequential.

    It runs through ``train()`` (its loss hook writes the blocks and scores them), so it gets
    the same schedule, clipping, memory guard, checkpoints and exact resume. A resume is exact
    when checkpoints fall on resampling steps, so ``checkpoint_every`` must be a multiple of
    ``resample_every``.
    """
    check_temperature(temperature)
    check_temperature(sample_temperature)
    div = divergence_fn(divergence)
    if isinstance(resample_every, bool) or not isinstance(resample_every, int) \
            or resample_every <= 0:
        raise ValueError(f"resample_every={resample_every!r} must be a positive whole number of "
                         "steps; pass e.g. 1 (new text at every step).")
    if cfg.checkpoint_dir and cfg.checkpoint_every % resample_every:
        raise ValueError(f"checkpoint_every={cfg.checkpoint_every} is not a multiple of "
                         f"resample_every={resample_every}, so a resumed run could not rewrite "
                         "the same text; pass a multiple of it.")
    check_vocab(student.get_output_embeddings().weight.shape[0], teacher_vocab(teacher))
    if isinstance(teacher, TeacherCache):
        raise ValueError("On-policy distillation scores text the student writes during "
                         "training, so a TeacherCache cannot hold it; pass the teacher model.")
    teacher.eval()
    written = {}  # the first step of the current window -> its blocks

    def loss_fn(model, x, y, rows, step):
        window = step - step % resample_every
        if window not in written:  # sampling is seeded by the window: a resume rewrites it
            written.clear()
            written[window] = sample_blocks(student, cfg.batch_size, context, bos_token_id,
                                            sample_temperature, cfg.batch_size,
                                            seed=cfg.seed + window)
        own = written[window][:, :-1][rows.sort().values].to(x.device)  # in the order written
        t_logits = _teacher_logits(teacher, own, rows)
        return div(model(input_ids=own).logits, t_logits, temperature)

    # placeholder blocks: they fix the batch shape; the hook replaces them by the student's text
    placeholder = torch.full((cfg.batch_size, context + 1), bos_token_id, dtype=torch.long)
    recipe = {"loss": "on-policy", "divergence": divergence, "temperature": float(temperature),
              "sample_temperature": float(sample_temperature), "resample_every": resample_every}
    return train(student, placeholder, None, cfg, loss_fn=loss_fn,
                 memory_guard=check_distill_fits, loss_recipe=recipe)


# ----------------------------------------------------------------------------- looking inside
@torch.no_grad()
def next_token_probs(model, tokenizer, context: str, temperature: float = 1.0) -> torch.Tensor:
    """The model's next-token distribution after ``EOS + context``, softened by ``temperature``."""
    ids = [tokenizer.eos_token_id, *tokenizer.encode(context, add_special_tokens=False)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1]
    model.train(was_training)
    return soften(logits, temperature).cpu()


def top_tokens(probs: torch.Tensor, tokenizer, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` most likely tokens of a distribution, as ``(text, probability)``."""
    values, ids = probs.topk(k)
    return [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]


def entropy_bits(probs: torch.Tensor) -> float:
    """Entropy of a distribution in bits."""
    p = probs.float().clamp(min=1e-30)
    return float(-(p * p.log2()).sum())


@torch.no_grad()
def mean_entropy_bits(model, blocks, batch_size: int = 16) -> float:
    """Average entropy (bits) of the model's next-token distribution over all positions of
    ``blocks``: how spread out its predictions are (the teacher's is the reference)."""
    inputs, _ = split_blocks(blocks)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(inputs), batch_size):
        logp = torch.log_softmax(model(input_ids=inputs[i:i + batch_size].to(device)).logits
                                 .float(), -1)
        total += float(-(logp.exp() * logp).sum())
        count += logp.shape[0] * logp.shape[1]
    model.train(was_training)
    return total / count / math.log(2)


def softened_distribution(model, tokenizer, context: str, temperature: float, k: int = 10) -> dict:
    """The plain-function path of ``temperature_explorer``: the top ``k`` next tokens after
    ``context`` at ``temperature``, the mass they hold, and the entropy of the whole
    distribution (it grows with ``T``: that is what "soft targets" means)."""
    probs = next_token_probs(model, tokenizer, context, temperature)
    top = top_tokens(probs, tokenizer, k)
    return {"temperature": temperature, "top": top, "top_mass": sum(p for _, p in top),
            "entropy_bits": entropy_bits(probs)}


def temperature_explorer(model, tokenizer, context: str = "Once upon a time, two friends named",
                         k: int = 10):
    """Type a context and drag the temperature: the teacher's softened next-token distribution."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    def show(context, temperature):
        d = softened_distribution(model, tokenizer, context, temperature, k)
        fig, ax = plt.subplots(figsize=(7, 3))
        labels = [repr(t) for t, _ in d["top"]]
        ax.bar(range(k), [p for _, p in d["top"]])
        ax.set_xticks(range(k), labels, rotation=45, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"T = {temperature:.1f}: entropy {d['entropy_bits']:.2f} bits, top {k} hold "
                     f"{d['top_mass']:.0%}")
        plt.show()

    return w.interactive(show, context=w.Text(value=context),
                         temperature=w.FloatSlider(value=1.0, min=0.25, max=8.0, step=0.25))


# ----------------------------------------------------------------------------- deployment
def file_size_mb(model) -> float:
    """Size of the model's weights serialized with ``torch.save`` (shared tensors once), in MB."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def quantize_int8(model):
    """A copy of ``model`` whose linear layers hold int8 weights (PyTorch dynamic quantization:
    activations are quantized on the fly, per batch). CPU only."""
    import copy
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {torch.nn.Linear},
                                dtype=torch.qint8)


@torch.no_grad()
def generation_throughput(model, tokenizer, batch_size: int = 32, new_tokens: int = 64,
                          repeats: int = 3) -> dict:
    """Greedy decoding of ``batch_size`` sequences at once (a server's view): tokens/s over all
    sequences, and ms per decoding step. ``evaluate.generation_speed`` is batch 1.

    The fastest of ``repeats`` runs is reported (after one warm-up), as ``timeit`` advises: on a
    shared machine the slower runs measure the other processes, not the model."""
    times = generation_times(model, tokenizer, batch_size, new_tokens, repeats)
    best = min(times)
    return {"tokens_per_second": batch_size * new_tokens / best,
            "ms_per_step": 1000 * best / new_tokens}
