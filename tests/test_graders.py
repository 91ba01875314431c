"""The exercise graders: references pass, typical mistakes are named, nothing leaks the answer."""

import math
import re

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmup_lib.exercises import grader as grading, solutions
from llmup_lib.exercises.bank import EXERCISES
from llmup_lib.exercises.bank_upgrades import OPTIONS

IDS = sorted(EXERCISES)
MISTAKES = [(ex.id, i) for ex in EXERCISES.values() for i in range(len(ex.mistakes))]


def run(capsys, exercise_id, fn, **kw):
    ok = grading.grade(exercise_id, fn, **kw)
    out = capsys.readouterr().out
    return ok, out


def assert_one_line(out):
    assert out.count("\n") == 1 and "Traceback" not in out, out


# ----------------------------------------------------------------------------- the bank


def test_at_least_three_exercises_per_notebook():
    per_notebook = {}
    for ex in EXERCISES.values():
        per_notebook[ex.notebook] = per_notebook.get(ex.notebook, 0) + 1
    assert {nb: n >= 3 for nb, n in per_notebook.items()} == {"00": False,
                                                                **{f"0{i}": True for i in range(1, 8)}}
    assert per_notebook["00"] == 1  # 00's one exercise, in the same form as the others


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_solution_passes(capsys, exercise_id):
    ok, out = run(capsys, exercise_id, EXERCISES[exercise_id].solution)
    assert ok and "correct!" in out
    assert_one_line(out)


@pytest.mark.parametrize("exercise_id,index", MISTAKES)
def test_each_known_mistake_is_rejected_and_named(capsys, exercise_id, index):
    mistake = EXERCISES[exercise_id].mistakes[index]
    ok, out = run(capsys, exercise_id, mistake.fn)
    assert not ok and "not yet" in out and mistake.message in out
    assert_one_line(out)


# ----------------------------------------------------------------------------- the required
# diagnoses, with learner code written the way learners write it (not the bank's own lambdas)


def test_kd_without_t_squared(capsys):
    def kd_forward_kl(s, t, T):
        return F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True,
                        reduction="none").sum(-1).mean()
    ok, out = run(capsys, "06.kd_forward_kl", kd_forward_kl)
    assert not ok and "off by exactly T²" in out.lower().replace("t²", "T²")


def test_lora_without_scale(capsys):
    def lora_forward(x, W, A, B, alpha, rank):
        return F.linear(x, W) + F.linear(F.linear(x, A), B)
    ok, out = run(capsys, "03.lora_forward", lora_forward)
    assert not ok and "α/r scale" in out


def test_power_law_fit_in_linear_space(capsys):
    from scipy.optimize import curve_fit

    def fit_power_law(n, loss, floor=0.0):
        start = np.polyfit(np.log(n), np.log(loss - floor), 1)  # a fair start, then linear LSQ
        p, _ = curve_fit(lambda x, A, a: floor + A * x ** -a, n, loss,
                         p0=(np.exp(start[1]), -start[0]), maxfev=20000)
        return float(p[0]), float(p[1])
    ok, out = run(capsys, "05.fit_power_law", fit_power_law)
    assert not ok and "linear space" in out


def test_log_space_fit_with_scipy_passes(capsys):
    """A correct fit written another way (curve_fit on the logs) is accepted."""
    from scipy.optimize import curve_fit

    def fit_power_law(n, loss, floor=0.0):
        p, _ = curve_fit(lambda x, logA, a: logA - a * x, np.log(n), np.log(loss - floor))
        return float(np.exp(p[0])), float(p[1])
    assert run(capsys, "05.fit_power_law", fit_power_law)[0]


@pytest.mark.parametrize("cut", [0, -2])
def test_masking_off_by_one(capsys, cut):
    def mask_prompt_labels(prompt, answer):
        seq = list(prompt) + list(answer)
        first = len(prompt) + cut  # the first position whose label is kept
        return [-100] * first + seq[first + 1:]
    ok, out = run(capsys, "04.mask_prompt_labels", mask_prompt_labels)
    assert not ok and "off by one" in out


def test_labels_not_shifted(capsys):
    def causal_lm_loss(logits, input_ids):
        return F.cross_entropy(logits.flatten(0, 1), input_ids.flatten())
    ok, out = run(capsys, "02.causal_lm_loss", causal_lm_loss)
    assert not ok and "Labels not shifted" in out


def test_bits_per_char_without_ln2(capsys):
    ok, out = run(capsys, "01.bits_per_char", lambda losses, n_chars: sum(losses) / n_chars)
    assert not ok and "ln 2" in out


def test_unknown_wrong_answer_gets_only_the_hint(capsys):
    ok, out = run(capsys, "01.perplexity", lambda x: float(np.median(x)) + 1.0)
    assert not ok and out.strip().endswith(EXERCISES["01.perplexity"].hints[0])


# ----------------------------------------------------------------------------- bad answers


def test_learner_function_that_raises_is_one_line(capsys):
    ok, out = run(capsys, "06.soften", lambda z, T: {}["missing"])
    assert not ok and "raised KeyError" in out
    assert_one_line(out)
    ok, out = run(capsys, "03.lora_scale", lambda a, r: 1 // 0)
    assert not ok and "raised ZeroDivisionError (integer division or modulo by zero)" in out


def test_wrong_shape_or_type_is_one_sentence(capsys):
    ok, out = run(capsys, "06.soften", lambda z, T: 0.5)
    assert not ok and re.search(r"expected a tensor of shape \(\d+, \d+\), got a float\.", out)
    ok, out = run(capsys, "06.kd_forward_kl", lambda s, t, T: torch.zeros(3))
    assert "expected a single number (a float or a 0-d tensor), got a tensor of shape (3,)" in out
    ok, out = run(capsys, "02.shift_labels", lambda x: x[:, 1:])
    assert "expected a tuple of 2 items, got a tensor of shape" in out
    ok, out = run(capsys, "05.six_nd", lambda n, d: None)
    assert "got None (did the function forget to return?)" in out
    ok, out = run(capsys, "07.choose_upgrade", lambda s: "lora")
    assert not ok and "expected one of 'prompting'" in out and "got 'lora'" in out
    assert_one_line(out)


def test_a_one_element_tensor_counts_as_a_number(capsys):
    ok, out = run(capsys, "06.kd_forward_kl",
                  lambda s, t, T: solutions.kd_forward_kl(s, t, T).reshape(1))
    assert ok, out


def test_not_a_function(capsys):
    ok, out = run(capsys, "01.perplexity", 3.2)
    assert not ok and "expected a function (perplexity(token_losses) -> float), got a float" in out


def test_inplace_edits_do_not_change_later_cases(capsys):
    def reinit_unseen_rows(weight, unseen_ids, noise):  # edits its input: allowed
        keep = torch.ones(len(weight), dtype=torch.bool)
        keep[unseen_ids] = False
        weight[unseen_ids] = weight[keep].mean(0) + weight[keep].std(0) * noise
        return weight
    assert run(capsys, "02.reinit_unseen_rows", reinit_unseen_rows)[0]


def test_choose_upgrade_wrong_decisions_get_a_question_not_the_answer(capsys):
    ok, out = run(capsys, "07.choose_upgrade", lambda s: "full fine-tuning")
    assert not ok and "Look again at" in out and "?" in out
    assert not [o for o in OPTIONS if o in out.split("not yet:")[1]]


# ----------------------------------------------------------------------------- no leaks


def _formats(value: float) -> set[str]:
    return {f"{value:.{k}f}" for k in (2, 3, 4, 5)} | {f"{value:.{k}g}" for k in (3, 4, 6)} \
        | {f"{value:,}", f"{value:.3e}", repr(value)}


def _scalar_truths(exercise_id):
    ex = EXERCISES[exercise_id]
    values = []
    for args in grading.hidden_cases(exercise_id):
        truth = ex.truth(*args)
        for item in truth if isinstance(truth, tuple) else (truth,):
            if not isinstance(item, (list, str)) and np.size(grading._as_array(item)) == 1:
                values.append(float(grading._as_array(item)))
    return values


@pytest.mark.parametrize("exercise_id", [i for i in IDS if EXERCISES[i].mistakes])
def test_verdict_never_contains_the_expected_value(capsys, exercise_id):
    ex = EXERCISES[exercise_id]
    outputs = [run(capsys, exercise_id, m.fn)[1] for m in ex.mistakes]
    truths = [v for v in _scalar_truths(exercise_id) if abs(v) >= 1e-3 and v not in (1.0, 2.0)]
    leaked = [(f, out) for out in outputs for v in truths for f in _formats(v)
              if len(f) >= 4 and f in out]
    assert not leaked


def test_leak_detector_can_fail(capsys):
    """The leak test above would notice the old checks' 'expected about …' messages."""
    old = f"not yet: expected about {math.exp(1.234):.3f}"
    assert any(f in old for f in _formats(math.exp(1.234)))


# Wrong answers that no registered mistake explains (so the verdict is the bare hint): the
# formulas of the removed value checks, graded as the bank's function exercises, leak no truth.
UNEXPLAINED = {
    "bits per char, a constant": ("01.bits_per_char", lambda losses, n_chars: 0.24),
    "training FLOPs, a constant": ("05.six_nd", lambda n, d: 1e9),
    "6ND, 4·N·D": ("05.six_nd", lambda n, d: 4 * n * d),
    "LoRA parameters, a constant": ("03.lora_param_count", lambda d_in, d_out, r: 1000),
    "gap closed, a constant": ("06.gap_closed", lambda s, st, t: 0.3),
    "optimal size, 20 tokens per parameter at C/6": (
        "05.compute_optimal_size", lambda c, law: math.sqrt(c / 6 / 20)),
}


@pytest.mark.parametrize("case", sorted(UNEXPLAINED))
def test_unexplained_wrong_answers_are_quiet_about_the_answer(capsys, case):
    exercise_id, fn = UNEXPLAINED[case]
    ok, out = run(capsys, exercise_id, fn)
    assert not ok and "not yet" in out and "expected about" not in out
    truths = [v for v in _scalar_truths(exercise_id) if abs(v) >= 1e-3 and v not in (1.0, 2.0)]
    assert not [f for v in truths for f in _formats(v) if len(f) >= 4 and f in out]
    assert_one_line(out)


def test_bank_truths_match_the_hand_computed_values():
    """The ground truths behind the removed value checks, on the hand-worked numbers their tests
    used: 6·N·D, r·(d_in + d_out), prompt-masked labels, bits per character, the gap closed."""
    truth = {i: EXERCISES[i].truth for i in EXERCISES}
    assert truth["05.six_nd"](10, 100) == 6000
    assert truth["03.lora_param_count"](4, 8, 2) == 24
    assert truth["04.mask_prompt_labels"]([5, 6, 7], [8, 9]) == [-100, -100, 8, 9]
    assert truth["01.bits_per_char"](np.array([0.25, 0.75]), 4) == pytest.approx(
        1.0 / math.log(2) / 4)
    assert truth["06.gap_closed"](1.0, 0.8, 0.6) == pytest.approx(0.5)
    assert truth["06.gap_closed"](1.024, 0.825, 0.596) == pytest.approx(
        (1.024 - 0.825) / (1.024 - 0.596))


def test_bank_grades_the_removed_checks_formulas(capsys):
    """Right answers pass and the typical wrong ones are named, for the formulas the removed
    value checks graded (training FLOPs, LoRA parameters, masked labels, forward KL)."""
    assert run(capsys, "05.six_nd", lambda n, d: 6 * n * d)[0]
    ok, out = run(capsys, "05.six_nd", lambda n, d: 2 * n * d)
    assert not ok and "forward pass only" in out
    assert run(capsys, "03.lora_param_count", lambda i, o, r: r * i + o * r)[0]
    ok, out = run(capsys, "03.lora_param_count", lambda i, o, r: i * o)
    assert not ok and "full layer" in out
    assert run(capsys, "04.mask_prompt_labels", lambda p, a: ([-100] * (len(p) - 1)) + list(a))[0]
    ok, out = run(capsys, "04.mask_prompt_labels", lambda p, a: (list(p) + list(a))[1:])
    assert not ok and "Nothing is masked" in out

    def kd_forward_kl(s, t, T):  # the KL written out by hand, without T²
        log_p, log_q = torch.log_softmax(t / T, -1), torch.log_softmax(s / T, -1)
        return (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    ok, out = run(capsys, "06.kd_forward_kl", kd_forward_kl)
    assert not ok and "T²" in out
    assert run(capsys, "06.kd_forward_kl", lambda s, t, T: T * T * kd_forward_kl(s, t, T))[0]


def test_bank_distillation_truths_are_the_package():
    """The distillation exercises' ground truth is ``distill`` itself (the removed
    check_forward_kl and check_gap_closed compared against it)."""
    from llmup_lib.methods.distill import forward_kl, gap_closed

    s, t = torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    assert torch.equal(EXERCISES["06.kd_forward_kl"].truth(s, t, 2.0), forward_kl(s, t, 2.0))
    assert not torch.allclose(EXERCISES["06.kd_forward_kl"].truth(s, t, 2.0),
                              forward_kl(s, t, 1.0))
    assert EXERCISES["06.gap_closed"].truth(1.0, 0.8, 0.6) == gap_closed(1.0, 0.8, 0.6)


def test_grader_imports_no_exercise():
    """The dependency runs one way, bank -> grader: the grader's source names no bank module,
    and the registry it grades from is the bank's."""
    import inspect

    import llmup_lib.exercises as package

    source = inspect.getsource(grading)
    assert not re.search(r"^\s*(from|import)\s+[.\w]*bank", source, flags=re.M)
    assert re.search(r"^from \.grader import register", inspect.getsource(package.bank), re.M)
    assert grading.exercises() == EXERCISES and len(EXERCISES) == 24
    assert package.check is grading.check and package.hint is grading.hint


# ----------------------------------------------------------------------------- hidden cases


def test_same_seed_same_cases_and_verdict(capsys):
    first = grading.hidden_cases("06.kd_forward_kl")
    second = grading.hidden_cases("06.kd_forward_kl")
    assert all(torch.equal(a, b) for c1, c2 in zip(first, second) for a, b in zip(c1[:2], c2[:2]))
    other = grading.hidden_cases("06.kd_forward_kl", seed=1)
    assert not torch.equal(first[0][0], other[0][0]) or first[0][0].shape != other[0][0].shape
    wrong = EXERCISES["06.kd_forward_kl"].mistakes[0].fn
    assert run(capsys, "06.kd_forward_kl", wrong)[1] == run(capsys, "06.kd_forward_kl", wrong)[1]


def test_cases_come_from_the_package_not_the_users_rng():
    torch.manual_seed(0)
    np.random.seed(0)
    a = grading.hidden_cases("01.next_token_cross_entropy")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    b = grading.hidden_cases("01.next_token_cross_entropy")
    assert torch.equal(torch.get_rng_state(), state)  # the learner's RNG is left alone
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b))


def test_grader_runs_the_learner_on_the_hidden_cases(capsys):
    seen = []

    def perplexity(token_losses):
        seen.append(np.array(token_losses))
        return float(np.exp(np.mean(token_losses)))
    grading.check(perplexity)
    cases = grading.hidden_cases("01.perplexity")
    assert len(seen) == len(cases) and all(np.array_equal(s, c[0]) for s, c in zip(seen, cases))


def test_cases_differ_between_exercises_sharing_a_generator():
    a = grading.hidden_cases("06.kd_forward_kl")[0][0]
    b = grading.hidden_cases("06.reverse_kl")[0][0]
    assert a.shape != b.shape or not torch.equal(a, b)


# ----------------------------------------------------------------------------- hints, lookup


def test_hint_tiers(capsys):
    assert grading.hint("06.kd_forward_kl", 1) == EXERCISES["06.kd_forward_kl"].hints[0]
    assert "T²" in grading.hint("06.kd_forward_kl", 2)
    source = grading.hint("06.kd_forward_kl", 3)
    assert "def kd_forward_kl(" in source and "T * T" in source and "import torch" in source
    with pytest.raises(ValueError, match="tier=4 must be 1"):
        grading.hint("06.kd_forward_kl", 4)
    with pytest.raises(ValueError, match="No exercise '06.kd'; the ids are"):
        grading.hint("06.kd")


def test_check_finds_the_exercise_by_name(capsys):
    def six_nd(n, d):
        return 6 * n * d

    def my_function(n, d):
        return 6 * n * d
    assert grading.check(six_nd)
    assert not grading.check(my_function)
    assert grading.check(my_function, "05.six_nd")
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("check: no exercise is called 'my_function'")


def test_solutions_match_the_package():
    """The references agree with the package where it implements the same thing."""
    from llmup_lib.methods import distill
    from llmup_lib.methods.lora import lora_update

    z_s, z_t = torch.randn(2, 4, 9), torch.randn(2, 4, 9)
    assert torch.allclose(solutions.kd_forward_kl(z_s, z_t, 3.0), distill.forward_kl(z_s, z_t, 3.0))
    W, A, B = torch.randn(5, 4), torch.randn(2, 4), torch.randn(5, 2)
    assert torch.allclose(solutions.lora_merge(W, A, B, 8, 2), lora_update(W, A, B, 8, 2))


# ----------------------------------------------------------------------------- teacher mode


def _notebook(tmp_path, cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


def _exercise_cell(source, exercise_id="01.bits_per_char", tags=("exercise",)):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    if exercise_id:
        cell.metadata["exercise_id"] = exercise_id
    return cell


STUB = ("def bits_per_char(token_losses, n_chars):\n    # YOUR CODE HERE\n"
        "    raise NotImplementedError")


def test_fill_solutions_replaces_only_open_exercise_cells(tmp_path, capsys):
    cells = [nbformat.v4.new_markdown_cell("# YOUR CODE HERE (markdown, untouched)"),
             _exercise_cell(STUB),
             _exercise_cell("def perplexity(x):\n    return 1.0", "01.perplexity"),
             _exercise_cell(STUB.replace("bits_per_char", "other"), None, tags=()),
             nbformat.v4.new_code_cell("from llmup_lib.exercises.grader import check\n"
                                       "passed = check(bits_per_char)")]
    path = _notebook(tmp_path, cells)
    nb = grading.fill_solutions(path)
    assert nb.cells[0].source == cells[0].source
    assert "# YOUR CODE HERE" not in nb.cells[1].source and "math.log(2)" in nb.cells[1].source
    assert nb.cells[2].source == cells[2].source  # already written: a teacher's run keeps it
    assert nb.cells[3].source == cells[3].source  # not tagged
    assert "# YOUR CODE HERE" in nbformat.read(str(path), as_version=4).cells[1].source
    namespace = {}
    for cell in nb.cells:  # the filled notebook runs and its check passes
        if cell.cell_type == "code" and "YOUR CODE HERE" not in cell.source:
            exec(cell.source, namespace)
    assert namespace["passed"] is True


def test_fill_solutions_needs_an_exercise_id(tmp_path):
    path = _notebook(tmp_path, [nbformat.v4.new_code_cell("x = 1"), _exercise_cell(STUB, None)])
    with pytest.raises(ValueError, match="Cell 1 of .* has no 'exercise_id'"):
        grading.fill_solutions(path)
    path = _notebook(tmp_path, [_exercise_cell(STUB, "09.nothing")])
    with pytest.raises(ValueError, match="No exercise '09.nothing'"):
        grading.fill_solutions(path)


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_solution_source_runs_on_its_own(exercise_id, capsys):
    """What fill_solutions pastes defines the function with its imports, in a bare namespace."""
    namespace = {}
    exec(grading.solution_source(exercise_id), namespace)
    fn = namespace[EXERCISES[exercise_id].name]
    assert grading.grade(exercise_id, fn)


def test_every_decision_appears_in_the_hidden_scenarios():
    decisions = {solutions.choose_upgrade(c[0]) for c in grading.hidden_cases("07.choose_upgrade")}
    assert decisions == set(OPTIONS)


def test_docs_list_every_exercise():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "exercises.md").read_text()
    assert [i for i in IDS if f"`{i}`" not in text] == []
