import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmup_lib.core.models import build_model
from llmup_lib.core.train import TrainConfig, batch_indices, eval_loss, lr_at, train
from llmup_lib.core.checkpoint import save_checkpoint


def _cfg(**kw):
    base = dict(steps=30, batch_size=8, lr=1e-2, log_every=5, progress=False, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedule_warmup_then_cosine():
    cfg = _cfg(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # monotone decay after warmup
    assert lrs[-1] == pytest.approx(1e-3, rel=0.01)


def test_batches_are_a_function_of_step_and_cover_an_epoch():
    seen = torch.cat([batch_indices(s, 40, 8, seed=0) for s in range(5)])
    assert sorted(seen.tolist()) == list(range(40))  # one epoch = every block once
    assert torch.equal(batch_indices(7, 40, 8, 0), batch_indices(7, 40, 8, 0))
    assert not torch.equal(batch_indices(5, 40, 8, 0), batch_indices(5, 40, 8, 1))


def test_training_lowers_loss_and_records_history(char_tok, tiny_blocks):
    train_b, val_b = tiny_blocks
    model = build_model("pico", char_tok, 32)
    before = eval_loss(model, val_b, 8)
    result = train(model, train_b, val_b, _cfg(eval_every=10))
    assert result.final_val_loss < before - 0.5
    steps, losses = result.series("train_loss")
    assert steps == [5, 10, 15, 20, 25, 30] and losses[-1] < losses[0]
    assert result.series("val_loss")[0] == [10, 20, 30]
    assert result.tokens_per_second > 0


def test_same_seed_same_numbers(char_tok, tiny_blocks):
    train_b, val_b = tiny_blocks
    a = train(build_model("pico", char_tok, 32), train_b, val_b, _cfg(steps=10))
    b = train(build_model("pico", char_tok, 32), train_b, val_b, _cfg(steps=10))
    assert a.history == b.history


def test_resume_is_exact(tmp_path, char_tok, tiny_blocks, monkeypatch):
    """Crash right after the step-15 checkpoint, resume into a fresh model: the resumed run
    must end with the weights and the loss history of an uninterrupted run."""
    import llmup_lib.core.train as T

    train_b, val_b = tiny_blocks
    full = train(build_model("pico", char_tok, 32), train_b, val_b, _cfg())
    cfg = _cfg(checkpoint_dir=str(tmp_path), checkpoint_every=15)

    class Crash(Exception):
        pass

    real_save = T.save_checkpoint

    def save_then_crash(*args, **kw):
        real_save(*args, **kw)
        raise Crash
    monkeypatch.setattr(T, "save_checkpoint", save_then_crash)
    with pytest.raises(Crash):
        train(build_model("pico", char_tok, 32), train_b, val_b, cfg)
    monkeypatch.undo()
    assert (tmp_path / "latest").read_text() == "step-000015"

    resumed = train(build_model("pico", char_tok, 32, seed=99), train_b, val_b, cfg)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert resumed.series("train_loss") == full.series("train_loss")


def test_resume_refuses_other_recipe_and_model(tmp_path, char_tok, tiny_blocks):
    train_b, _ = tiny_blocks
    cfg = _cfg(steps=5, checkpoint_dir=str(tmp_path))
    train(build_model("pico", char_tok, 32), train_b, None, cfg)
    saved = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=r"lr=0.01, not 0.02.*new checkpoint_dir"):
        train(build_model("pico", char_tok, 32), train_b, None, _cfg(steps=5, lr=2e-2,
                                                                       checkpoint_dir=str(tmp_path)))
    with pytest.raises(ValueError, match=r"hidden_size=32, not 48"):
        train(build_model("nano", char_tok, 32), train_b, None, cfg)
    assert sorted(os.listdir(tmp_path)) == saved  # nothing saved was touched


def test_corrupt_checkpoint_is_reported_and_kept(tmp_path, char_tok, tiny_blocks):
    train_b, _ = tiny_blocks
    cfg = _cfg(steps=5, checkpoint_dir=str(tmp_path))
    train(build_model("pico", char_tok, 32), train_b, None, cfg)
    weights = tmp_path / "step-000005" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"step-000005.*unreadable.*delete that folder"):
        train(build_model("pico", char_tok, 32), train_b, None, cfg)
    assert weights.exists()


def test_atomic_save_keeps_previous_on_crash(tmp_path, char_tok, monkeypatch):
    model = build_model("pico", char_tok, 32)
    opt = torch.optim.AdamW(model.parameters())
    cfg = _cfg()
    save_checkpoint(tmp_path, model, opt, cfg, 10, [])

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, model, opt, cfg, 20, [])
    assert (tmp_path / "latest").read_text() == "step-000010"
    assert (tmp_path / "step-000010" / "model.safetensors").exists()
    assert not (tmp_path / "step-000020").exists()


def test_bad_batch_split_and_no_trainable(char_tok, tiny_blocks):
    model = build_model("pico", char_tok, 32)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(model, tiny_blocks[0], None, _cfg())


DDP_SCRIPT = Path(__file__).with_name("ddp_train.py")


def _run(nproc, out):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", str(DDP_SCRIPT), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    return json.loads(Path(out).read_text())


@pytest.mark.slow  # 57 s on 2 shared cores (2026-12-04)
def test_two_processes_match_one(tmp_path):
    """Same global batch: 2 gloo processes (4 blocks each) vs 1 process (8 blocks) must reach
    the same loss. Tolerance: 1e-3 relative (only float summation order differs)."""
    one = _run(1, tmp_path / "one.json")
    two = _run(2, tmp_path / "two.json")
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert one["final_val_loss"] < one["initial_val_loss"] - 0.3  # it really trained
    assert math.isclose(one["final_val_loss"], two["final_val_loss"], rel_tol=1e-3)


# ----------------------------------------------------------------------------- hooks
def test_loss_hook_replaces_the_loss_and_logs_its_terms(char_tok, tiny_blocks):
    import torch.nn.functional as F

    train_b, _ = tiny_blocks
    calls = []

    def doubled(model, x, y, rows, step):
        calls.append((step, len(rows)))
        logits = model(input_ids=x).logits
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return 2 * ce, {"half": ce.detach()}

    plain = train(build_model("pico", char_tok, 32), train_b, None, _cfg(steps=4, log_every=1))
    hooked = train(build_model("pico", char_tok, 32), train_b, None, _cfg(steps=4, log_every=1),
                   loss_fn=doubled)
    assert calls == [(s, 8) for s in range(4)]
    # step 1: same weights, so the hooked loss is exactly twice the plain one
    assert hooked.history[0]["train_loss"] == pytest.approx(2 * plain.history[0]["train_loss"])
    assert hooked.history[0]["half"] == pytest.approx(plain.history[0]["train_loss"])
    assert isinstance(hooked.history[0]["half"], float)


def test_memory_guard_hook_runs_before_step_one(char_tok, tiny_blocks):
    seen = []

    def refuse(model, batch, context, device):
        seen.append((batch, context, str(device)))
        raise MemoryError("too big")

    model = build_model("pico", char_tok, 32)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(MemoryError, match="too big"):
        train(model, tiny_blocks[0], None, _cfg(), memory_guard=refuse)
    assert seen == [(8, 32, "cpu")]
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_resume_refuses_another_loss_recipe(tmp_path, char_tok, tiny_blocks):
    train_b, _ = tiny_blocks
    cfg = _cfg(steps=5, checkpoint_dir=str(tmp_path))
    train(build_model("pico", char_tok, 32), train_b, None, cfg, loss_recipe={"alpha": 0.5})
    saved = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=r"loss \{'alpha': 0.5\}, not \{'alpha': 1.0\}; use the "
                                         r"same loss"):
        train(build_model("pico", char_tok, 32), train_b, None, cfg, loss_recipe={"alpha": 1.0})
    with pytest.raises(ValueError, match=r"not next-token cross-entropy"):
        train(build_model("pico", char_tok, 32), train_b, None, cfg)
    assert sorted(os.listdir(tmp_path)) == saved


# ----------------------------------------------------------------------------- torch.compile
COMPILE_TOLERANCE = 1e-4  # compiled vs eager, losses and weights after 4 steps (absolute)


@pytest.mark.slow  # 13 s on 2 shared cores (2026-12-04)
def test_compiled_training_matches_eager_within_tolerance(char_tok, tiny_blocks):
    train_b, val_b = tiny_blocks
    cfg = _cfg(steps=4, log_every=1)
    eager = train(build_model("pico", char_tok, 32, seed=0), train_b, val_b, cfg)
    compiled = train(build_model("pico", char_tok, 32, seed=0), train_b, val_b,
                     _cfg(steps=4, log_every=1, compile=True))
    assert eager.compile_seconds == 0.0 and compiled.compile_seconds > 0
    # the compiling step is in seconds but not in the steady-state tokens/s
    assert compiled.seconds > compiled.compile_seconds
    assert compiled.tokens_per_second == pytest.approx(
        3 * 8 * 32 / (compiled.seconds - compiled.compile_seconds))
    assert compiled.series("train_loss")[1] == pytest.approx(eager.series("train_loss")[1],
                                                             abs=COMPILE_TOLERANCE)
    assert compiled.final_val_loss == pytest.approx(eager.final_val_loss, abs=COMPILE_TOLERANCE)
    for p, q in zip(eager.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(p, q, atol=COMPILE_TOLERANCE, rtol=0)
    assert type(compiled.model) is type(eager.model)  # the plain model comes back, not a wrapper


def test_compile_unavailable_is_one_clear_error(char_tok, tiny_blocks, monkeypatch, tmp_path):
    import llmup_lib.core.train as T

    monkeypatch.setattr(T, "compile_unavailable",
                        lambda: "PyTorch 1.13.1 has no torch.compile (it arrived in 2.0)")
    model = build_model("pico", char_tok, 32)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=r"compile=True needs torch.compile, but PyTorch 1.13.1"
                                           r" has no torch.compile.*pass compile=False"):
        train(model, tiny_blocks[0], None, _cfg(compile=True, checkpoint_dir=str(tmp_path)))
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    assert not any(tmp_path.iterdir())
    monkeypatch.undo()
    assert T.compile_unavailable() is None  # this machine's torch can compile
    with pytest.raises(ValueError, match=r"compile='yes' must be True or False"):
        _cfg(compile="yes")


def test_fused_adamw_comes_with_compile_and_on_request():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    from llmup_lib.core.train import make_optimizer

    def fused(**kw):
        return bool(make_optimizer(model, _cfg(**kw)).defaults.get("fused"))
    assert not fused() and fused(compile=True) and fused(fused_adamw=True)
    assert not fused(compile=True, fused_adamw=False)
    groups = make_optimizer(model, _cfg(fused_adamw=True)).param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]  # still no decay on gains
    with pytest.raises(ValueError, match=r"fused_adamw='yes' must be True, False or None"):
        _cfg(fused_adamw="yes")


def test_fused_adamw_trains_like_the_default_adamw(char_tok, tiny_blocks):
    train_b, _ = tiny_blocks
    plain = train(build_model("pico", char_tok, 32), train_b, None, _cfg(steps=5, log_every=1))
    fused = train(build_model("pico", char_tok, 32), train_b, None,
                  _cfg(steps=5, log_every=1, fused_adamw=True))
    assert fused.series("train_loss")[1] == pytest.approx(plain.series("train_loss")[1],
                                                          abs=1e-5)
