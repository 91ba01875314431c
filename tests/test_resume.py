"""Crash and resume: a run killed (SIGKILL) in the middle of writing a checkpoint resumes in a
fresh process and ends exactly where an uninterrupted run ends; checkpoints and the suite's
caches carry SHA-256 checksums, so a truncated or bit-flipped file is never loaded silently.

Policy (see llmup_lib/train.py and docs/bad_inputs.md): a corrupt training checkpoint is skipped
with a warning and the newest intact one is resumed (still exact); with none intact, one error
names the folder and the fix. A corrupt cache entry (sweep row, domain model) is retrained.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import llmup_lib.core.train as T
from llmup_lib.core.models import build_model
from llmup_lib.store import MANIFEST, verify_manifest
from llmup_lib.core.train import TrainConfig, train

DRIVER = Path(__file__).with_name("resume_train.py")
ROOT = DRIVER.parent.parent


def _cfg(**kw):
    # The driver's recipe (tests/resume_train.py): 30 steps, a checkpoint every 10.
    base = dict(steps=30, batch_size=8, lr=1e-2, log_every=5, progress=False, seed=1,
                checkpoint_every=10)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def uninterrupted(char_tok, tiny_blocks):
    torch.set_num_threads(1)
    train_b, val_b = tiny_blocks
    return train(build_model("pico", char_tok, 32, seed=0), train_b, val_b, _cfg())


def _assert_same_run(result_weights, history, reference):
    ref = reference.model.state_dict()
    for name, value in result_weights.items():
        assert torch.allclose(value, ref[name], rtol=0, atol=1e-6), name
    assert [r["step"] for r in history] == [r["step"] for r in reference.history]
    for got, want in zip(history, reference.history):
        for key in ("train_loss", "val_loss"):
            if key in want:
                assert got[key] == pytest.approx(want[key], abs=1e-6)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _env(**extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def uninterrupted_distill(char_tok, tiny_blocks):
    from llmup_lib.methods.distill import distill

    torch.set_num_threads(1)
    train_b, val_b = tiny_blocks
    # the driver's distillation (tests/resume_train.py ... distill)
    return distill(build_model("pico", char_tok, 32, seed=0), build_model("nano", char_tok, 32,
                                                                          seed=1),
                   train_b, val_b, _cfg(), alpha=0.5, temperature=2.0)


@pytest.mark.slow  # 95-129 s on 2 shared cores (2026-12-04)
@pytest.mark.parametrize("mode", ["train", "distill"])
def test_sigkill_while_writing_a_checkpoint_then_resume_is_exact(tmp_path, mode, request):
    uninterrupted = request.getfixturevalue("uninterrupted" if mode == "train"
                                            else "uninterrupted_distill")
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.pt"
    marker = Path(f"{out}.paused")
    extra = [mode] if mode == "distill" else []
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(ckpt), str(out), *extra], cwd=ROOT,
                            env=_env(LLMUP_TEST_PAUSE_AT_STEP="20"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():  # the driver writes it from inside save_checkpoint, then waits
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the driver never reached the step-20 checkpoint"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    # Killed between optimizer.pt and trainer_state.json: only the temp folder is half written.
    partial = ckpt / ".tmp-step-000020"
    assert (partial / "model.safetensors").exists() and (partial / "optimizer.pt").exists()
    assert not (partial / "trainer_state.json").exists() and not (partial / MANIFEST).exists()
    assert not (ckpt / "step-000020").exists()
    assert (ckpt / "latest").read_text() == "step-000010"
    assert verify_manifest(ckpt / "step-000010") is None

    done = subprocess.run([sys.executable, str(DRIVER), str(ckpt), str(out), *extra], cwd=ROOT,
                          env=_env(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    resumed = torch.load(out, weights_only=True)
    assert resumed["resumed_from"] == 10  # it resumed, it did not start over
    _assert_same_run(resumed["state_dict"], resumed["history"], uninterrupted)
    if mode == "distill":  # the KD terms were logged and survived the resume
        assert [r["kd"] for r in resumed["history"] if "kd" in r] == pytest.approx(
            [r["kd"] for r in uninterrupted.history if "kd" in r], abs=1e-6)
        assert json.loads((ckpt / "step-000030" / "trainer_state.json").read_text())[
            "loss_recipe"]["alpha"] == 0.5
    assert (ckpt / "latest").read_text() == "step-000030"
    assert verify_manifest(ckpt / "step-000030") is None
    assert not list(ckpt.glob(".tmp-*"))  # the half-written folder was replaced


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(data[:len(data) // 2]))
    else:  # one flipped bit in the middle of the tensor data: same size, still parses
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))


@pytest.mark.slow  # 5 s on 2 shared cores (2026-12-04)
@pytest.mark.parametrize("how, reason", [("truncate", "truncated"), ("bitflip", "SHA-256")])
def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path, char_tok, tiny_blocks,
                                                          uninterrupted, how, reason):
    train_b, val_b = tiny_blocks
    cfg = _cfg(checkpoint_dir=str(tmp_path))
    train(build_model("pico", char_tok, 32), train_b, val_b, cfg)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-000020", "step-000030"]
    _damage(tmp_path / "step-000030" / "model.safetensors", how)
    assert reason in verify_manifest(tmp_path / "step-000030")

    with pytest.warns(UserWarning, match=rf"step-000030.*{reason}.*previous intact one, "
                                         r"'.*step-000020'"):
        resumed = train(build_model("pico", char_tok, 32, seed=99), train_b, val_b, cfg)
    _assert_same_run(resumed.model.state_dict(), resumed.history, uninterrupted)
    assert verify_manifest(tmp_path / "step-000030") is None  # rewritten whole


def test_no_intact_checkpoint_is_one_clear_error_and_nothing_is_touched(tmp_path, char_tok,
                                                                       tiny_blocks):
    train_b, _ = tiny_blocks
    cfg = _cfg(steps=20, checkpoint_dir=str(tmp_path))
    train(build_model("pico", char_tok, 32), train_b, None, cfg)
    _damage(tmp_path / "step-000020" / "optimizer.pt", "bitflip")
    _damage(tmp_path / "step-000010" / "trainer_state.json", "truncate")
    before = _snapshot(tmp_path)
    with pytest.raises(
            ValueError, match=r"step-000020' is unreadable \(optimizer.pt fails its SHA-256 "
                              r"checksum\) and no earlier intact checkpoint.*delete that folder"):
        train(build_model("pico", char_tok, 32), train_b, None, cfg)
    assert _snapshot(tmp_path) == before


def test_checkpoint_without_manifest_loads_with_a_warning(tmp_path, char_tok, tiny_blocks):
    train_b, _ = tiny_blocks
    cfg = _cfg(steps=10, checkpoint_dir=str(tmp_path))
    first = train(build_model("pico", char_tok, 32), train_b, None, cfg)
    (tmp_path / "step-000010" / MANIFEST).unlink()  # as written by llmup before checksums
    with pytest.warns(UserWarning, match="no checksums.*loaded unverified"):
        again = train(build_model("pico", char_tok, 32, seed=5), train_b, None, cfg)
    for p, q in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)


# ----------------------------------------------------------------------------- caches


def test_corrupt_sweep_cache_row_is_retrained(tmp_path, monkeypatch, char_tok, tiny_blocks):
    from llmup_lib.experiments.sweep import SweepRecipe, run_sweep

    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    calls = []
    real_train = T.train
    monkeypatch.setattr(T, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    recipe = SweepRecipe(context=32, batch_size=8, eval_blocks=8)
    data = (char_tok, *tiny_blocks)
    points = [{"size": "pico", "tokens": 2 * 32 * 8}]

    first = run_sweep(points, recipe, data=data, log=None)
    (entry,) = (tmp_path / "scaling").glob("*.json")
    assert run_sweep(points, recipe, data=data, log=None) == first and len(calls) == 1

    text = entry.read_text()
    loss = json.dumps(first[0]["val_loss"])
    entry.write_text(text.replace(loss, loss[:-1] + str((int(loss[-1]) + 1) % 10), 1))
    with pytest.warns(UserWarning, match=r"sweep row .*corrupt \(checksum mismatch\); retrain"):
        again = run_sweep(points, recipe, data=data, log=None)
    assert len(calls) == 2 and again[0]["val_loss"] == pytest.approx(first[0]["val_loss"])

    entry.write_text(entry.read_text()[:40])  # truncated
    with pytest.warns(UserWarning, match="corrupt"):
        run_sweep(points, recipe, data=data, log=None)
    assert len(calls) == 3


def test_corrupt_domain_model_cache_is_rebuilt(tmp_path, monkeypatch, char_tok, tiny_blocks):
    import llmup_lib.tasks.domain as ft
    from llmup_lib.core.profiles import get_profile

    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    monkeypatch.setattr(ft, "prepared_base",
                        lambda profile, tok: (build_model("pico", char_tok, 32), torch.tensor([])))
    monkeypatch.setattr(ft, "domain_blocks", lambda profile, tok: tiny_blocks)
    calls = []

    def fake_train(model, *args, **kwargs):  # the recipe is not under test: skip the training
        calls.append(1)
        return T.TrainResult(model=model)
    monkeypatch.setattr(T, "train", fake_train)
    profile = get_profile("cpu")

    ft.domain_model(profile, char_tok, progress=False)
    path = ft.domain_model_dir(profile, char_tok)
    assert path.parent == tmp_path / "domain"
    assert verify_manifest(path) is None and len(calls) == 1
    ft.domain_model(profile, char_tok, progress=False)
    assert len(calls) == 1  # intact: loaded from the cache

    _damage(path / "model.safetensors", "bitflip")
    with pytest.warns(UserWarning, match=r"cached domain model .* corrupt \(model.safetensors "
                                         r"fails its SHA-256 checksum\); rebuilding"):
        model = ft.domain_model(profile, char_tok, progress=False)
    assert len(calls) == 2 and verify_manifest(path) is None
    assert model.config.hidden_size == 32


@pytest.mark.slow  # 8.5 s on 2 shared cores (2026-12-04)
def test_a_lora_run_resumes_exactly(tmp_path, char_tok, tiny_blocks):
    # A PEFT checkpoint holds the adapter only (adapter_model.safetensors); resuming loads it
    # into a fresh LoRA model on the same base and must continue the run exactly.
    from llmup_lib.methods.lora import lora_model

    train_b, val_b = tiny_blocks

    def fresh():
        return lora_model(build_model("pico", char_tok, 32, seed=0), rank=2)

    reference = train(fresh(), train_b, val_b, _cfg())
    cfg = _cfg(checkpoint_dir=str(tmp_path))
    train(fresh(), train_b, val_b, cfg)
    latest = tmp_path / "step-000030" / "adapter_model.safetensors"
    assert latest.exists() and not (tmp_path / "step-000030" / "model.safetensors").exists()
    _damage(latest, "truncate")  # the run resumes from step 20 and redoes the last 10 steps
    with pytest.warns(UserWarning, match=r"previous intact one, '.*step-000020'"):
        resumed = train(fresh(), train_b, val_b, cfg)
    _assert_same_run(resumed.model.state_dict(), resumed.history, reference)
