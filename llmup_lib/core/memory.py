"""Will it fit? Training memory, estimated before step 1, and a guard that refuses a run that
cannot fit with one clear sentence instead of a swap storm or an out-of-memory kill.

Training holds four things (bytes, fp32 unless the model is in another dtype):

* **weights** ``P · s`` (``s`` = bytes per value);
* **gradients** ``P_trainable · s``;
* **optimizer** state: AdamW keeps two moments, ``2 · P_trainable · s`` (SGD with momentum one);
* **activations** saved by autograd for the backward pass. For the Llama family, per layer and
  per token (``d`` width, ``f`` SwiGLU hidden size, ``kv`` key/value width, ``h`` heads)::

      9·d + 2·kv + 4·f  values
        2·d  attention RMSNorm (normalised input, scaled output)
        1·d + 2·kv  q, k after RoPE and v, kept by scaled-dot-product attention
        2·d  the attention output and its contiguous copy fed to o_proj
        1·d  the residual stream after attention
        2·d  MLP RMSNorm
        4·f  gate, SiLU(gate), up and SiLU(gate)·up
        1·d  the layer's output (the next residual)
      + h         the softmax log-sum-exp of fused (flash / memory-efficient) attention, or
      + 2·h·T     the scores and probabilities of "eager" attention (T = context)

  plus ``3·d`` per token around the stack (embedding output, final norm), and the logits:
  ``B·T·V`` floats for the logits, again for ``log_softmax``, again for its gradient, so
  ``3·B·T·V·4`` bytes at the start of the backward pass (cross-entropy runs in fp32).

The formula was checked against the measured peak rise of resident memory during training
(``tests/test_memory.py``: within 30 % for several sizes, batches and contexts on CPU). Models
outside the Llama family get the same formula from their config's width, depth and MLP size; it
is an estimate, so the guard (``validate_fits``) refuses only runs that exceed *all* available
memory.

The measurement lives here too: ``peak_memory_mb`` (the process's peak so far),
``process_peak_rss_mb`` (this process's own resident peak, never its parent's) and
``PeakMemory`` (the peak rise during one block of code).
"""

from __future__ import annotations

import numbers
import os
import sys
import threading
from pathlib import Path

import torch

GB = 1e9
OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd": 0, "sgd-momentum": 1}


def _config(model):
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "hidden_size"):
        raise ValueError(f"{type(model).__name__} has no transformers config with a "
                         "hidden_size; pass a transformers causal LM.")
    return config


def activation_bytes(config, batch_size: int, context: int, bytes_per_value: int = 4) -> dict:
    """Activations autograd keeps for backward (see the module docstring for the formula)."""
    d, L = config.hidden_size, config.num_hidden_layers
    h = config.num_attention_heads
    heads_kv = getattr(config, "num_key_value_heads", None) or h
    kv = heads_kv * (getattr(config, "head_dim", None) or d // h)
    f = getattr(config, "intermediate_size", None) or 4 * d
    eager = getattr(config, "_attn_implementation", "sdpa") == "eager"
    attention = 2 * h * context if eager else h
    per_token_layer = 9 * d + 2 * kv + 4 * f + attention
    tokens = batch_size * context
    layers = L * per_token_layer * tokens * bytes_per_value
    around = 3 * d * tokens * bytes_per_value
    logits = 3 * tokens * config.vocab_size * 4
    return {"layers": layers, "around": around, "logits": logits,
            "total": layers + around + logits}


def estimate_training_memory(model, batch_size: int, context: int,
                             optimizer: str = "adamw") -> dict:
    """Bytes a training step of ``model`` needs at ``batch_size`` × ``context`` tokens (per
    process): ``weights``, ``gradients``, ``optimizer``, ``activations`` and ``total``."""
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer={optimizer!r} is unknown; choose one of "
                         f"{', '.join(OPTIMIZER_STATES)}.")
    for name, value in (("batch_size", batch_size), ("context", context)):
        if not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive whole number.")
    config = _config(model)
    params = list(model.parameters())  # a tied tensor is yielded once
    weights = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    value_bytes = params[0].element_size() if params else 4
    acts = activation_bytes(config, batch_size, context, value_bytes)
    out = {"weights": weights, "gradients": trainable,
           "optimizer": OPTIMIZER_STATES[optimizer] * trainable,
           "activations": acts["total"]}
    out["total"] = sum(out.values())
    return out


def _cgroup_available() -> int | None:
    """Room left under a cgroup memory limit (Binder, Docker), which /proc/meminfo ignores."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge number: no limit
            return max(0, int(limit) - usage)
    return None


def available_memory(device=None) -> int | None:
    """Bytes free for a new allocation: ``torch.cuda.mem_get_info`` on a GPU, else
    ``MemAvailable`` from /proc/meminfo (and a cgroup limit if tighter); None if unknown."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None  # mps, xla...: no reliable query
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    cgroup = _cgroup_available()
    if cgroup is not None:
        free = cgroup if free is None else min(free, cgroup)
    return free


def _gb(n: float) -> str:
    return f"{n / GB:.2f} GB" if n >= 0.01 * GB else f"{n / GB:.2g} GB"


def validate_fits(estimate: dict, available: int | None = None, device=None,
               weights_loaded: bool = False) -> None:
    """Raise ``MemoryError`` when ``estimate["total"]`` exceeds the ``available`` bytes (default:
    measured on ``device``). With ``weights_loaded`` the weights already sit in memory, so only
    the rest must fit in what is free. Unknown availability passes."""
    if os.environ.get("LLMUP_NO_MEMORY_CHECK"):
        return
    available = available_memory(device) if available is None else available
    if available is None:
        return
    need = estimate["total"] - (estimate["weights"] if weights_loaded else 0)
    if need > available:
        where = "GPU" if device is not None and torch.device(device).type == "cuda" else "RAM"
        raise MemoryError(
            f"Training needs about {_gb(estimate['total'])} (activations "
            f"{_gb(estimate['activations'])}, weights + gradients + optimizer "
            f"{_gb(estimate['total'] - estimate['activations'])}) but only "
            f"{_gb(available)} of {where} is available; use a smaller batch_size or "
            "context, or a smaller model (or set TrainConfig(memory_check=False) to try anyway).")


# ----------------------------------------------------------------------------- measurement

def peak_memory_mb() -> float:
    """Peak memory so far: GPU allocations on CUDA, else the process's peak resident set (NaN
    where nothing can tell, e.g. Windows without psutil)."""
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        return torch.cuda.max_memory_allocated() / 2**20
    peak = process_peak_rss_mb()
    return float("nan") if peak is None else peak


PROC_STATUS = "/proc/self/status"  # Linux only; a module value, so tests can take it away


def process_peak_rss_mb() -> float | None:
    """This process's own peak resident set in MB, or None where nothing can tell.

    Linux: ``VmHWM``. Not ``ru_maxrss``: exec keeps the parent's peak in it, so a notebook
    kernel started by a 2 GB pytest process reported 2 GB before running a cell. Other POSIX
    systems: ``ru_maxrss``. Windows (no ``resource``, imported here so the package still
    imports there): psutil's peak working set, when psutil is installed.
    """
    try:
        with open(PROC_STATUS) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return _peak_rss_without_resource()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB else


def _peak_rss_without_resource() -> float | None:
    """Windows: psutil's peak working set (or the current RSS elsewhere), when psutil exists."""
    try:
        import psutil
    except ImportError:
        return None
    info = psutil.Process().memory_info()
    return getattr(info, "peak_wset", info.rss) / 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:  # pages: size, resident, ...
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """Measure the extra memory a block of code needs at its peak, in MB.

    On CUDA it is the allocator's peak above the start. On a Linux CPU a background thread
    samples the resident set every few milliseconds: ``peak_mb`` is the largest rise above the
    level at entry (the process-wide ``ru_maxrss`` cannot be reset, so it cannot tell two runs
    apart). Elsewhere it falls back to the process peak.

        with PeakMemory() as mem:
            train(...)
        print(mem.peak_mb)
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s, self.peak_mb = interval_s, 0.0

    def __enter__(self):
        self._cuda = torch.cuda.is_available()
        self._linux = os.path.exists("/proc/self/statm")
        if self._cuda:
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated() / 2**20
        elif self._linux:
            self._start = self._max = _rss_mb()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval_s):
            self._max = max(self._max, _rss_mb())

    def __exit__(self, *exc):
        if self._cuda:
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20 - self._start
        elif self._linux:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._max, _rss_mb()) - self._start
        else:
            self.peak_mb = peak_memory_mb()
        return False


def adamw_state_estimate(model, bytes_per_value: int = 4) -> int:
    """What AdamW's state will cost before training: ``2 × trainable × bytes`` (m and v)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)  # tied: counted once
    return 2 * trainable * bytes_per_value


def file_size_bytes(path) -> int:
    """Total size of a file or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def validate_distill_fits(student, batch_size: int, context: int, device=None) -> dict:
    """``train()``'s memory guard for a distillation step: the student's training memory plus
    the teacher's side of the loss, its logits and their softmax for one batch (the teacher's
    weights are already loaded, and a ``TeacherCache`` is already in memory). Raises
    ``MemoryError`` when that cannot fit; returns the estimate."""
    estimate = estimate_training_memory(student, batch_size, context)
    vocab = student.get_output_embeddings().weight.shape[0]
    teacher_side = 2 * batch_size * context * vocab * 4  # fp32 logits + softmax
    estimate["activations"] += teacher_side
    estimate["total"] += teacher_side
    validate_fits(estimate, device=device, weights_loaded=True)
    return estimate


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0: ``/proc/self/clear_refs``
    accepts ``5``), so ``process_peak_rss_mb`` then measures one run. False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
