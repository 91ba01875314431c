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
teacher scores), and DistilBERT's student (``half_depth_student``: every other layer of the
teacher, started from its weights).

Elsewhere: notebook 06's students in ``tasks.students``, the distributions it looks at in
``teaching.distributions``, size, throughput and int8 quantization in ``methods.deploy``, and
the memory guard (``validate_distill_fits``) in ``core.memory``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from ..core.memory import validate_distill_fits
from ..core.models import decoder_layers
from ..core.progress import finish, progress as progress_bar  # "progress" is a flag below
from ..core.train import TrainConfig, TrainResult, causal_lm_loss, split_blocks, train

DIVERGENCES = ("forward", "reverse", "jsd")


# ----------------------------------------------------------------------------- input checks
def validate_temperature(temperature) -> float:
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be a positive number (1 is the plain "
                         "softmax, 2-4 soften it); pass a value > 0.")
    return float(temperature)


def validate_alpha(alpha) -> float:
    if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha={alpha!r} is outside [0, 1]; it weights the distillation term "
                         "against the hard-label loss, so pass a value from 0 (labels only) to "
                         "1 (teacher only).")
    return float(alpha)


def validate_t_squared(t_squared) -> bool:
    if not isinstance(t_squared, bool):
        raise ValueError(f"t_squared={t_squared!r} must be True (Hinton's loss, the default) or "
                         "False (the soft term without its T² factor).")
    return t_squared


def validate_vocab(student_size: int, teacher_size: int) -> None:
    if student_size != teacher_size:
        raise ValueError(f"The student has {student_size} output logits but the teacher has "
                         f"{teacher_size}: logit distillation needs the same tokenizer; use a "
                         "teacher with the student's vocabulary, or sequence-level KD (train on "
                         "the teacher's text, re-tokenized).")


def _validate_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    validate_vocab(student_logits.shape[-1], teacher_logits.shape[-1])
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
    T = validate_temperature(temperature)
    _validate_pair(student_logits, teacher_logits)
    return (T, F.log_softmax(student_logits.float() / T, dim=-1),
            F.log_softmax(teacher_logits.float() / T, dim=-1))


def _kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """``KL(a ‖ b)`` per position, from log-probabilities, summed over the vocabulary."""
    return (log_a.exp() * (log_a - log_b)).sum(-1)


# ----------------------------------------------------------------------------- the losses
def soften(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``softmax(logits / T)``: the softened distribution the student is asked to match."""
    return torch.softmax(logits.float() / validate_temperature(temperature), dim=-1)


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
    T = validate_temperature(temperature)
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
    alpha = validate_alpha(alpha)
    div = divergence_fn(divergence)
    validate_t_squared(t_squared)
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
    paid once instead of once per step of every student. Hidden states need logits that are
    the output layer of the last hidden state, softcapped where the config says so (Gemma2's
    ``final_logit_softcapping``); the first batch is checked against the teacher's own logits, and
    a teacher whose head does anything else is refused.
    """

    def __init__(self, teacher, blocks, batch_size: int = 32, max_logits_mb: float = 256,
                 progress: bool = True):
        inputs, _ = split_blocks(blocks)
        self.head = teacher.get_output_embeddings()
        self.softcap = getattr(teacher.config, "final_logit_softcapping", None)
        self.vocab_size = self.head.weight.shape[0]
        self.n_blocks = len(inputs)
        self.logits_mb = inputs.numel() * self.vocab_size * 4 / 2**20
        self.stores = "logits" if self.logits_mb <= max_logits_mb else "hidden"
        device = self.head.weight.device
        was_training = teacher.training
        teacher.eval()
        parts = []
        with torch.no_grad():
            batches = range(0, len(inputs), batch_size)
            bar = progress_bar(batches, total=len(batches), desc="teacher", disable=not progress)
            for i in bar:
                x = inputs[i:i + batch_size].to(device)
                if self.stores == "logits":
                    parts.append(teacher(input_ids=x).logits.float().cpu())
                else:
                    hidden = teacher.get_decoder()(input_ids=x).last_hidden_state
                    if not parts:
                        self._check_head(teacher, x, hidden)
                    parts.append(hidden.float().cpu())
        finish(bar, f"teacher: logits for {len(inputs)} blocks cached")
        teacher.train(was_training)
        self.values = torch.cat(parts)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden).float()
        if self.softcap:  # Gemma2: logits = c·tanh(logits / c)
            logits = self.softcap * torch.tanh(logits / self.softcap)
        return logits

    def _check_head(self, teacher, x: torch.Tensor, hidden: torch.Tensor) -> None:
        """Refuse a teacher whose logits are not ``_head`` of its last hidden state."""
        want = teacher(input_ids=x).logits.float()
        gap = float((self._head(hidden) - want).abs().max())
        if not gap <= 1e-3 * max(1.0, float(want.abs().max())):
            raise ValueError(f"{type(teacher).__name__}'s logits are not its output layer applied"
                             f" to its last hidden state (they differ by up to {gap:.3g}), so the "
                             "cache cannot keep hidden states; raise max_logits_mb to "
                             f"{math.ceil(self.logits_mb)} so it keeps the logits.")

    @property
    def nbytes(self) -> int:
        return self.values.numel() * self.values.element_size()

    @torch.no_grad()
    def logits(self, rows: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for training blocks ``rows``: ``[len(rows), context, vocab]``."""
        if self.stores == "logits":
            return self.values[rows].to(self.head.weight.device)
        return self._head(self.values[rows].to(self.head.weight.device))


def teacher_vocab(teacher) -> int:
    if isinstance(teacher, TeacherCache):
        return teacher.vocab_size
    return teacher.get_output_embeddings().weight.shape[0]


# ----------------------------------------------------------------------------- training


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
    alpha = validate_alpha(alpha)
    validate_temperature(temperature)
    divergence_fn(divergence)
    validate_t_squared(t_squared)

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
    (``validate_distill_fits``); ``tokens_per_second`` counts training steps only, not evaluation.
    """
    cfg = replace(cfg, **overrides) if cfg else TrainConfig(**overrides)
    loss_fn = kd_loss_fn(teacher, alpha, temperature, divergence, beta, t_squared)
    validate_vocab(student.get_output_embeddings().weight.shape[0], teacher_vocab(teacher))
    inputs, _ = split_blocks(train_blocks)
    if isinstance(teacher, TeacherCache) and teacher.n_blocks != len(inputs):
        raise ValueError(f"The TeacherCache holds {teacher.n_blocks} blocks but "
                         f"train_blocks has {len(inputs)}; build the cache from these blocks.")
    if not isinstance(teacher, TeacherCache):
        teacher.eval()  # the teacher never trains: no dropout, no gradients
    recipe = {"loss": "kd", "alpha": float(alpha), "temperature": float(temperature),
              "divergence": divergence, "beta": float(beta), "t_squared": bool(t_squared)}
    return train(student, train_blocks, val_blocks, cfg, loss_fn=loss_fn,
                 memory_guard=validate_distill_fits, loss_recipe=recipe)


def gap_closed(scratch_loss: float, student_loss: float, teacher_loss: float) -> float:
    """The fraction of the scratch-student → teacher loss gap that distillation closes:
    0 = no better than training without a teacher, 1 = as good as the teacher."""
    gap = scratch_loss - teacher_loss
    if gap <= 0:
        raise ValueError(f"The scratch student's loss {scratch_loss:.4f} is not above the "
                         f"teacher's {teacher_loss:.4f}, so there is no gap to close; compare "
                         "against a stronger teacher.")
    return (scratch_loss - student_loss) / gap


def half_depth_student(teacher, from_teacher: bool = True, seed: int = 0):
    """A student with every other layer of ``teacher`` (layers 0, 2, ...) at the teacher's
    width. ``from_teacher`` copies those layers, the embeddings and the final norm (DistilBERT's
    initialisation, Sanh et al. 2019); otherwise the same shape from random weights. Any
    transformers causal LM: the layer stack is found by ``decoder_layers``, and per-layer config
    lists (``layer_types``: Gemma2's sliding/full attention, Qwen2's) keep the kept layers' entries.
    """
    prefix, layers = decoder_layers(teacher)
    keep = list(range(0, len(layers), 2))
    fields = teacher.config.to_dict()
    n_layers_key = teacher.config.attribute_map.get("num_hidden_layers", "num_hidden_layers")
    fields[n_layers_key] = len(keep)  # GPT-2 calls it n_layer
    if isinstance(fields.get("layer_types"), list):
        fields["layer_types"] = [fields["layer_types"][i] for i in keep]
    config = teacher.config.__class__.from_dict(fields)
    torch.manual_seed(seed)
    weights = next(teacher.parameters())
    student = type(teacher)(config).to(device=weights.device, dtype=weights.dtype)
    if from_teacher:
        renamed = {}
        for name, value in teacher.state_dict().items():
            if name.startswith(prefix + "."):
                index, rest = name[len(prefix) + 1:].split(".", 1)
                if int(index) not in keep:
                    continue
                name = f"{prefix}.{keep.index(int(index))}.{rest}"
            renamed[name] = value
        student.load_state_dict(renamed)
    return student


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
    T = validate_temperature(temperature)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    batches = range(0, n_blocks, batch_size)
    bar = progress_bar(batches, total=len(batches), desc="sample", disable=not progress)
    for start in bar:
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
    finish(bar, f"sample: {n_blocks} blocks of {context} tokens written")
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
    validate_temperature(temperature)
    validate_temperature(sample_temperature)
    div = divergence_fn(divergence)
    if isinstance(resample_every, bool) or not isinstance(resample_every, int) \
            or resample_every <= 0:
        raise ValueError(f"resample_every={resample_every!r} must be a positive whole number of "
                         "steps; pass e.g. 1 (new text at every step).")
    if cfg.checkpoint_dir and cfg.checkpoint_every % resample_every:
        raise ValueError(f"checkpoint_every={cfg.checkpoint_every} is not a multiple of "
                         f"resample_every={resample_every}, so a resumed run could not rewrite "
                         "the same text; pass a multiple of it.")
    validate_vocab(student.get_output_embeddings().weight.shape[0], teacher_vocab(teacher))
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
                 memory_guard=validate_distill_fits, loss_recipe=recipe)
