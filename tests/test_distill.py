import math

import pytest
import torch
import torch.nn.functional as F

from llmup_lib.methods.deploy import file_size_mb, generation_throughput, quantize_int8
from llmup_lib.methods.distill import (TeacherCache, distill, distill_on_policy, forward_kl,
                                       gap_closed, jsd, kd_loss, reverse_kl, sample_blocks, soften)
from llmup_lib.teaching.distributions import (entropy_bits, mean_entropy_bits, next_token_probs,
                                              softened_distribution, temperature_explorer,
                                              top_tokens)
from llmup_lib.teaching.claims import claim_t_squared_matters
from llmup_lib.core.models import build_model, count_params
from llmup_lib.core.train import TrainConfig, eval_loss, train

LOSSES = [forward_kl, reverse_kl, jsd]


def _logits(seed, shape=(2, 5, 7), scale=2.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def pair(char_tok):
    teacher = build_model("nano", char_tok, 32, seed=1)
    student = build_model("pico", char_tok, 32, seed=2)
    return teacher, student


# ----------------------------------------------------------------------------- the losses
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_each_loss_is_zero_when_student_equals_teacher(loss, temperature):
    z = _logits(0)
    assert float(loss(z, z.clone(), temperature)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(_logits(1), z, temperature)) > 1e-3  # and positive when they differ


def test_losses_match_a_hand_computation():
    s = torch.tensor([[1.0, 0.0, -1.0]])
    t = torch.tensor([[0.0, 2.0, 0.0]])
    T = 2.0

    def softmax(z):
        e = [math.exp(v / T) for v in z]
        return [v / sum(e) for v in e]

    p, q = softmax([0.0, 2.0, 0.0]), softmax([1.0, 0.0, -1.0])
    kl_pq = sum(a * math.log(a / b) for a, b in zip(p, q))
    kl_qp = sum(b * math.log(b / a) for a, b in zip(p, q))
    m = [0.5 * a + 0.5 * b for a, b in zip(p, q)]
    js = 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m)) + \
        0.5 * sum(b * math.log(b / c) for b, c in zip(q, m))
    assert float(forward_kl(s, t, T)) == pytest.approx(T * T * kl_pq, rel=1e-5)
    assert float(reverse_kl(s, t, T)) == pytest.approx(T * T * kl_qp, rel=1e-5)
    assert float(jsd(s, t, T, beta=0.5)) == pytest.approx(T * T * js, rel=1e-5)
    # generalized JSD tends to β·KL(p‖q)-like behaviour: it is not symmetric for β ≠ 0.5
    assert float(jsd(s, t, T, beta=0.2)) != pytest.approx(float(jsd(t, s, T, beta=0.2)))
    assert float(jsd(s, t, T)) == pytest.approx(float(jsd(t, s, T)), rel=1e-5)


def test_t_squared_keeps_gradient_scale_across_temperatures():
    t = _logits(3, (64, 50))
    grads = {}
    for T in (1.0, 2.0, 4.0, 8.0):
        s = _logits(4, (64, 50)).requires_grad_()
        forward_kl(s, t, T).backward()
        grads[T] = float(s.grad.norm())
    # with the T² factor the gradient stays within a factor 2 of its T = 1 size ...
    for T in (2.0, 4.0, 8.0):
        assert 0.5 < grads[T] / grads[1.0] < 2.0, grads
    # ... without it, it would shrink like 1/T² (here: 64x smaller at T = 8)
    assert grads[8.0] / 64 < 0.05 * grads[1.0]


def test_kd_loss_mixes_soft_and_hard_by_alpha_and_ignores_masked_positions():
    s, t = _logits(5), _logits(6)
    labels = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(0))
    ce = F.cross_entropy(s.flatten(0, 1), labels.flatten())
    assert float(kd_loss(s, t, labels, alpha=0.0)) == pytest.approx(float(ce), rel=1e-5)
    assert float(kd_loss(s, t, labels, alpha=1.0, temperature=2.0)) == pytest.approx(
        float(forward_kl(s, t, 2.0)), rel=1e-5)
    total, soft, hard = kd_loss(s, t, labels, alpha=0.3, temperature=2.0, return_parts=True)
    assert float(total) == pytest.approx(0.3 * soft + 0.7 * hard, rel=1e-5)
    rev = kd_loss(s, t, labels, alpha=1.0, temperature=1.0, divergence="reverse")
    assert float(rev) == pytest.approx(float(reverse_kl(s, t)), rel=1e-5)
    # without T² the soft term is the divergence divided by T² (the mistake 06 measures)
    _, soft_no_t2, _ = kd_loss(s, t, labels, alpha=0.3, temperature=2.0, return_parts=True,
                               t_squared=False)
    assert soft_no_t2 == pytest.approx(soft / 4, rel=1e-5)
    masked = labels.clone()
    masked[:, :2] = -100  # positions 0-1 ignored by both terms
    a = kd_loss(s, t, masked, alpha=0.5)
    b = kd_loss(s[:, 2:], t[:, 2:], labels[:, 2:], alpha=0.5)
    assert float(a) == pytest.approx(float(b), rel=1e-5)


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), "2"])
def test_bad_temperature_is_a_clear_error(temperature):
    s = _logits(0)
    with pytest.raises(ValueError, match=r"temperature=.* must be a positive number"):
        forward_kl(s, s, temperature)
    with pytest.raises(ValueError, match="temperature="):
        soften(s, temperature)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_unit_interval_is_a_clear_error(alpha, pair, tiny_blocks):
    s = _logits(0)
    with pytest.raises(ValueError, match=rf"alpha={alpha} is outside \[0, 1\]"):
        kd_loss(s, s, torch.zeros(2, 5, dtype=torch.long), alpha=alpha)
    teacher, student = pair
    with pytest.raises(ValueError, match="alpha="):
        distill(student, teacher, tiny_blocks[0], steps=1, batch_size=2, lr=1e-3, alpha=alpha)


def test_different_vocabularies_are_a_clear_error(pair, char_tok, tiny_blocks):
    with pytest.raises(ValueError, match="7 output logits but the teacher has 9.*same tokenizer"):
        forward_kl(_logits(0, (2, 5, 7)), _logits(0, (2, 5, 9)))
    teacher, _ = pair
    from transformers import LlamaForCausalLM

    from llmup_lib.core.models import model_config

    other = LlamaForCausalLM(model_config("pico", len(char_tok) + 3, 32))
    with pytest.raises(ValueError, match="same tokenizer"):
        distill(other, teacher, tiny_blocks[0], steps=1, batch_size=2, lr=1e-3)


def test_other_bad_inputs_are_clear_errors(pair, tiny_blocks):
    s = _logits(0)
    with pytest.raises(ValueError, match="beta=1 must lie strictly between 0 and 1"):
        jsd(s, s, beta=1)
    with pytest.raises(ValueError, match="divergence='kl' is unknown"):
        kd_loss(s, s, torch.zeros(2, 5, dtype=torch.long), divergence="kl")
    with pytest.raises(ValueError, match="t_squared='no' must be True"):
        kd_loss(s, s, torch.zeros(2, 5, dtype=torch.long), t_squared="no")
    with pytest.raises(ValueError, match="differ in shape"):
        forward_kl(_logits(0, (2, 5, 7)), _logits(0, (2, 4, 7)))
    with pytest.raises(ValueError, match="no gap to close"):
        gap_closed(0.5, 0.4, 0.6)
    teacher, student = pair
    cache = TeacherCache(teacher, tiny_blocks[0][:4], progress=False)
    with pytest.raises(ValueError, match="holds 4 blocks"):
        distill(student, cache, tiny_blocks[0], steps=1, batch_size=2, lr=1e-3)


def test_gap_closed():
    assert gap_closed(1.0, 0.75, 0.5) == pytest.approx(0.5)
    assert gap_closed(1.0, 1.0, 0.5) == 0.0
    assert gap_closed(1.0, 1.1, 0.5) < 0  # worse than scratch


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("max_logits_mb", [256, 0])  # stores logits / hidden states
def test_teacher_cache_gives_the_teachers_exact_logits(pair, tiny_blocks, max_logits_mb):
    teacher, _ = pair
    blocks = tiny_blocks[0][:10]
    cache = TeacherCache(teacher, blocks, batch_size=4, max_logits_mb=max_logits_mb,
                         progress=False)
    assert cache.stores == ("logits" if max_logits_mb else "hidden")
    rows = torch.tensor([7, 2])
    with torch.no_grad():
        direct = teacher(input_ids=blocks[rows, :-1]).logits
    torch.testing.assert_close(cache.logits(rows), direct, atol=1e-5, rtol=1e-5)
    assert cache.nbytes > 0


def test_distill_with_alpha_zero_is_training_from_scratch(char_tok, pair, tiny_blocks):
    teacher, _ = pair
    tr, va = tiny_blocks
    cfg = TrainConfig(steps=6, batch_size=4, lr=3e-3, progress=False, eval_batches=2,
                      log_every=1, eval_every=2)
    a = train(build_model("pico", char_tok, 32, seed=3), tr, va, cfg)
    b = distill(build_model("pico", char_tok, 32, seed=3), teacher, tr, va, cfg, alpha=0.0)
    c = distill(build_model("pico", char_tok, 32, seed=3), teacher, tr, va, cfg, alpha=0.5)
    for key in ("train_loss", "val_loss"):  # step for step
        steps, losses = a.series(key)
        assert b.series(key)[0] == steps and len(steps) == (6 if key == "train_loss" else 3)
        assert b.series(key)[1] == pytest.approx(losses, abs=1e-6)
        assert c.series(key)[1][-1] != pytest.approx(losses[-1], abs=1e-6)  # α matters
    assert b.series("ce")[1] == pytest.approx(a.series("train_loss")[1], abs=1e-6)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


def test_distill_speed_excludes_evaluation(char_tok, pair, tiny_blocks, monkeypatch):
    import time

    import llmup_lib.core.train as T

    teacher, _ = pair
    real_eval = T.eval_loss

    def slow_eval(*args, **kwargs):
        time.sleep(0.4)
        return real_eval(*args, **kwargs)
    monkeypatch.setattr(T, "eval_loss", slow_eval)
    t0 = time.perf_counter()
    res = distill(build_model("pico", char_tok, 32), teacher, tiny_blocks[0], tiny_blocks[1],
                  steps=4, batch_size=4, lr=1e-3, eval_every=1, progress=False)
    wall = time.perf_counter() - t0
    assert wall > 1.6 and len(res.series("val_loss")[0]) == 4  # four slow evaluations ran
    assert res.seconds < wall - 1.5  # ... and none of them is in the timed training
    assert res.tokens_per_second == pytest.approx(4 * 4 * 32 / res.seconds)


def test_on_policy_refuses_checkpoints_between_resamples(char_tok, pair, tmp_path):
    teacher, _ = pair
    cfg = TrainConfig(steps=8, batch_size=4, lr=1e-2, progress=False,
                      checkpoint_dir=str(tmp_path), checkpoint_every=3)
    with pytest.raises(ValueError, match=r"checkpoint_every=3 is not a multiple of "
                                         r"resample_every=2.*pass a multiple"):
        distill_on_policy(build_model("pico", char_tok, 16), teacher, cfg, 16,
                          char_tok.eos_token_id, resample_every=2)
    with pytest.raises(ValueError, match=r"resample_every=0 must be a positive whole number"):
        distill_on_policy(build_model("pico", char_tok, 16), teacher, cfg, 16,
                          char_tok.eos_token_id, resample_every=0)
    assert not any(tmp_path.iterdir())


def test_on_policy_resumes_exactly(char_tok, pair, tmp_path, monkeypatch):
    import llmup_lib.core.train as T

    teacher, _ = pair

    def cfg(**kw):
        return TrainConfig(steps=6, batch_size=4, lr=1e-2, progress=False, log_every=1, **kw)

    full = distill_on_policy(build_model("pico", char_tok, 16, seed=5), teacher, cfg(), 16,
                             char_tok.eos_token_id, resample_every=2)

    class Crash(Exception):
        pass
    real_save = T.save_checkpoint

    def save_then_crash(*args, **kw):
        real_save(*args, **kw)
        raise Crash
    ck = cfg(checkpoint_dir=str(tmp_path), checkpoint_every=4)
    monkeypatch.setattr(T, "save_checkpoint", save_then_crash)
    with pytest.raises(Crash):
        distill_on_policy(build_model("pico", char_tok, 16, seed=5), teacher, ck, 16,
                          char_tok.eos_token_id, resample_every=2)
    monkeypatch.undo()
    resumed = distill_on_policy(build_model("pico", char_tok, 16, seed=9), teacher, ck, 16,
                                char_tok.eos_token_id, resample_every=2)
    assert resumed.series("train_loss")[0] == full.series("train_loss")[0]
    assert resumed.series("train_loss")[1] == pytest.approx(full.series("train_loss")[1], abs=1e-6)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


def test_distill_moves_the_student_toward_the_teacher(char_tok, pair, tiny_blocks):
    teacher, _ = pair
    tr, va = tiny_blocks
    teacher = train(teacher, tr, None, TrainConfig(steps=15, batch_size=8, lr=1e-2,
                                                   progress=False)).model
    cache = TeacherCache(teacher, tr, progress=False)
    cfg = TrainConfig(steps=12, batch_size=8, lr=1e-2, progress=False)
    x = va[:, :-1]

    def kl_to_teacher(model):
        with torch.no_grad():
            return float(forward_kl(model(input_ids=x).logits, teacher(input_ids=x).logits))

    before = kl_to_teacher(build_model("pico", char_tok, 32, seed=4))
    cached = distill(build_model("pico", char_tok, 32, seed=4), cache, tr, None, cfg, alpha=1.0)
    live = distill(build_model("pico", char_tok, 32, seed=4), teacher, tr, None, cfg, alpha=1.0)
    assert kl_to_teacher(cached.model) < 0.7 * before
    # the cache is only a speed-up: the same student comes out
    for p, q in zip(cached.model.parameters(), live.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)
    assert {"kd", "ce", "train_loss"} <= set(cached.history[-1])


def test_sample_blocks_are_seeded_packed_blocks(pair, char_tok):
    teacher, _ = pair
    a = sample_blocks(teacher, 5, 12, char_tok.eos_token_id, batch_size=2, seed=1)
    b = sample_blocks(teacher, 5, 12, char_tok.eos_token_id, batch_size=2, seed=1)
    assert a.shape == (5, 13) and torch.equal(a, b)
    assert (a[:, 0] == char_tok.eos_token_id).all()
    assert not torch.equal(a, sample_blocks(teacher, 5, 12, char_tok.eos_token_id, seed=2))


def test_on_policy_distillation_runs_and_lowers_its_loss(char_tok, pair):
    teacher, _ = pair
    student = build_model("pico", char_tok, 16, seed=5)
    cfg = TrainConfig(steps=8, batch_size=4, lr=1e-2, progress=False, log_every=1)
    result = distill_on_policy(student, teacher, cfg, 16, char_tok.eos_token_id,
                               resample_every=4)
    losses = result.series("train_loss")[1]
    assert len(losses) == 8 and losses[-1] < losses[0]


# ----------------------------------------------------------------------------- inspection
def test_softened_distribution_flattens_with_temperature(pair, char_tok):
    teacher, _ = pair
    cold = softened_distribution(teacher, char_tok, "the cat", 0.5, k=5)
    hot = softened_distribution(teacher, char_tok, "the cat", 4.0, k=5)
    assert hot["entropy_bits"] > cold["entropy_bits"]
    assert hot["top_mass"] < cold["top_mass"] <= 1 + 1e-6
    assert len(cold["top"]) == 5 and cold["top"][0][1] >= cold["top"][1][1]
    probs = next_token_probs(teacher, char_tok, "the cat")
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    assert top_tokens(probs, char_tok, 1)[0][1] == pytest.approx(float(probs.max()))
    assert entropy_bits(torch.full((8,), 1 / 8)) == pytest.approx(3.0)
    flat = build_model("pico", char_tok, 32, seed=0)  # fresh init: near-uniform predictions
    blocks = torch.randint(0, len(char_tok), (3, 9))
    assert 0.9 * math.log2(len(char_tok)) < mean_entropy_bits(flat, blocks, 2) \
        <= math.log2(len(char_tok)) + 1e-4
    widget = temperature_explorer(teacher, char_tok, "the cat")
    assert len(widget.children) >= 2


def test_deployment_size_quantization_and_speed(pair, char_tok):
    teacher, student = pair
    n = count_params(student)["total"]
    assert file_size_mb(student) == pytest.approx(4 * n / 1e6, rel=0.15)  # float32, tied once
    assert file_size_mb(teacher) > 1.5 * file_size_mb(student)
    q = quantize_int8(student)
    assert file_size_mb(q) < file_size_mb(student)
    x = torch.randint(0, len(char_tok), (2, 10))
    with torch.no_grad():
        close = torch.allclose(q(input_ids=x).logits, student(input_ids=x).logits, atol=0.05)
    assert close
    speed = generation_throughput(student, char_tok, batch_size=4, new_tokens=4, repeats=1)
    assert speed["tokens_per_second"] > 0 and speed["ms_per_step"] > 0


def test_eval_loss_of_distilled_student_is_finite(char_tok, pair, tiny_blocks):
    teacher, _ = pair
    tr, va = tiny_blocks
    res = distill(build_model("pico", char_tok, 32), teacher, tr, va, steps=2, batch_size=4,
                  lr=1e-3, divergence="jsd", alpha=0.5, progress=False)
    assert math.isfinite(res.final_val_loss)
    assert res.final_val_loss == pytest.approx(eval_loss(res.model, va, 4, 8), rel=1e-5)


def test_kd_loss_fn_is_kd_loss_on_the_teachers_logits(pair, tiny_blocks):
    from llmup_lib.methods.distill import kd_loss_fn

    teacher, student = pair
    blocks = tiny_blocks[0][:6]
    rows = torch.tensor([4, 1])
    x, y = blocks[rows, :-1], blocks[rows, 1:]
    cache = TeacherCache(teacher, blocks, progress=False)
    with torch.no_grad():
        want = kd_loss(student(input_ids=x).logits, teacher(input_ids=x).logits, y, 0.3, 2.0)
        for source in (teacher, cache):  # live teacher, or the cache looked up by rows
            loss, logs = kd_loss_fn(source, 0.3, 2.0)(student, x, y, rows=rows, step=0)
            assert float(loss) == pytest.approx(float(want), rel=1e-5)
            assert float(loss) == pytest.approx(0.3 * logs["kd"] + 0.7 * logs["ce"], rel=1e-5)

    class NoTeacher:  # alpha = 0 must never call the teacher
        def __call__(self, *a, **k):
            raise AssertionError("the teacher was called")
    with torch.no_grad():
        loss, logs = kd_loss_fn(NoTeacher(), alpha=0.0)(student, x, y, rows=rows, step=0)
        ce = F.cross_entropy(student(input_ids=x).logits.flatten(0, 1), y.flatten())
    assert float(loss) == pytest.approx(float(ce), rel=1e-6) and logs["kd"] == 0.0
    with pytest.raises(ValueError, match="alpha=2"):
        kd_loss_fn(teacher, alpha=2)


def test_t_squared_check_fails_on_a_null_experiment():
    """06's check: it passes when the arms' means differ by more than three seed deviations and
    fails when the flag changes nothing (both arms the same runs) or only within the spread."""
    assert claim_t_squared_matters([1.03, 1.04, 1.02], [1.12, 1.11, 1.13]) == pytest.approx(-0.09)
    with pytest.raises(AssertionError, match="made no measurable difference"):
        claim_t_squared_matters([1.03, 1.06, 1.01], [1.03, 1.06, 1.01])  # the flag ignored
    with pytest.raises(AssertionError, match="made no measurable difference"):
        claim_t_squared_matters([1.03, 1.12, 1.00], [1.10, 1.05, 1.14])  # inside the seed spread
    with pytest.raises(ValueError, match="at least two seeds per arm"):
        claim_t_squared_matters([1.03], [1.12])


def test_without_t_squared_the_teacher_weighs_less_in_training(pair, char_tok, tiny_blocks):
    """The flag reaches the training loss: the logged soft term is the divergence / T²."""
    teacher, _ = pair
    runs = {}
    for flag in (True, False):
        student = build_model("pico", char_tok, 32, seed=0)
        runs[flag] = distill(student, teacher, tiny_blocks[0], None,
                             TrainConfig(steps=1, batch_size=4, lr=1e-3, progress=False),
                             alpha=0.5, temperature=4.0, t_squared=flag)
    kd = {flag: [row["kd"] for row in r.history if "kd" in row][0] for flag, r in runs.items()}
    assert kd[False] == pytest.approx(kd[True] / 16, rel=1e-4)


def test_half_depth_student_takes_every_other_teacher_layer(char_tok):
    from llmup_lib.methods.distill import half_depth_student

    teacher = build_model("mini", char_tok, 32, seed=3)  # 4 layers
    student = half_depth_student(teacher)
    assert student.config.num_hidden_layers == 2
    assert student.config.hidden_size == teacher.config.hidden_size
    s, t = student.state_dict(), teacher.state_dict()
    for i, j in ((0, 0), (1, 2)):
        for name in ("self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"):
            assert torch.equal(s[f"model.layers.{i}.{name}"], t[f"model.layers.{j}.{name}"])
    assert torch.equal(s["model.embed_tokens.weight"], t["model.embed_tokens.weight"])
    assert torch.equal(s["model.norm.weight"], t["model.norm.weight"])
    random = half_depth_student(teacher, from_teacher=False)
    assert not torch.equal(random.state_dict()["model.layers.1.mlp.down_proj.weight"],
                           t["model.layers.2.mlp.down_proj.weight"])
    # it runs, with the KV cache of its own depth
    out = student.generate(torch.ones(1, 1, dtype=torch.long), max_new_tokens=3, min_new_tokens=3,
                           do_sample=False)
    assert out.shape == (1, 4)


@pytest.mark.slow  # 17 s on 2 shared cores (2026-12-04)
def test_distill_tuning_task_trains_every_student(monkeypatch, tmp_path):
    """`tune --task distill` on a tiny profile: every method, rate and seed, scored by
    validation loss; alpha 0 ('scratch') differs from KD; the best rate comes from val_loss."""
    import llmup_lib.tasks.students as S
    from llmup_lib.core.profiles import get_profile
    from llmup_lib.core.tokenizer import load_tokenizer
    from llmup_lib.experiments.tuning import best_rate, validate_method, summary, tune

    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    monkeypatch.setattr(S, "STUDENT_STEPS", 3)
    monkeypatch.setattr(S, "N_TRANSFER", 8)
    profile = get_profile("cpu", base_size="mini", base_steps=4, n_general=40, n_val=8)
    table = tune({"scratch": [1e-2], "kd": [1e-2, 3e-2], "kd-half-init": [3e-3]}, [0, 1],
                 profile, load_tokenizer(), log=None, task="distill")
    assert table["task"] == "distill" and table["teacher_loss"] > 0
    assert len(table["rows"]) == 8 and all(r["steps"] == 3 for r in table["rows"])
    assert all(math.isfinite(r["val_loss"]) for r in table["rows"])
    stats = summary(table)
    assert stats[("kd", 1e-2)]["val_loss"] != stats[("scratch", 1e-2)]["val_loss"]
    assert best_rate(table, "kd") in (1e-2, 3e-2)
    with pytest.raises(ValueError, match="Unknown distillation method 'full'.*kd-half-init"):
        validate_method("full", "distill")
    with pytest.raises(ValueError, match="Unknown tuning task 'pretrain'"):
        tune({"kd": [1e-2]}, [0], profile, load_tokenizer(), log=None, task="pretrain")


@pytest.mark.slow  # 4.6-5.4 s on 2 shared cores (2026-12-04)
def test_notebook_and_sweep_train_the_same_student(monkeypatch, char_tok, tiny_blocks):
    """Notebook 06 trains through ``train_student``, the sweep through ``distill_tune_run``: the
    same loss to the last bit, also when the notebook evaluates more often (for its curves) and
    when the scratch student gets the live teacher instead of the cache (alpha 0 never calls
    it); and both are ``distill()`` on a fresh nano student with the recipe written out."""
    import llmup_lib.tasks.students as S
    from llmup_lib.core.profiles import get_profile

    monkeypatch.setattr(S, "STUDENT_STEPS", 4)
    monkeypatch.setattr(S, "N_TRANSFER", 8)
    profile = get_profile("cpu", context=32, batch_size=4)
    teacher = build_model("mini", char_tok, 32, seed=1)
    data = S.student_data(teacher, *tiny_blocks, profile, char_tok)
    assert len(data["transfer"]) == 8 and data["cache"].n_blocks == 8
    for method in ("kd", "scratch", "t4-without-t2"):
        row = S.distill_tune_run(method, 1e-2, 1, data, profile)
        curve = S.train_student(method, 1e-2, 1, data, profile, eval_every=2)
        assert curve.final_val_loss == row["val_loss"] and len(curve.series("val_loss")[0]) == 2
        init = 1 if method in S.SEEDED_INIT else profile.seed  # the T² arms' seed draws weights too
        by_hand = distill(build_model("nano", char_tok, 32, seed=init),
                          teacher if method == "scratch" else data["cache"], data["transfer"],
                          data["val"], TrainConfig(steps=4, batch_size=4, lr=1e-2, seed=1,
                                                   eval_every=4, eval_batches=16, progress=False),
                          **{"alpha": 1.0, "temperature": 1.0, **S.DISTILL_SETTINGS[method]})
        assert by_hand.final_val_loss == row["val_loss"]
    # the T² arms' seeds draw the initial weights; the other kinds keep one initialisation
    a, b = (S.distill_student("t4-with-t2", data, profile, seed) for seed in (0, 1))
    assert not torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    c, d = (S.distill_student("kd", data, profile) for _ in range(2))
    assert torch.equal(c.model.embed_tokens.weight, d.model.embed_tokens.weight)
    hot = S.train_student("kd", 1e-2, 1, data, profile, temperature=4.0)  # settings override
    assert hot.final_val_loss != S.distill_tune_run("kd", 1e-2, 1, data, profile)["val_loss"]
    with pytest.raises(ValueError, match="Unknown distillation method 'full'; use one of scratch"):
        S.train_student("full", 1e-2, 1, data, profile)
