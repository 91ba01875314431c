"""The code a notebook writes out in plain view (03's LoRALinear, 06's KD loss by hand), run
here outside the notebook: on a pico model it matches the library, and the notebook's check fails
on a broken copy (a LoRA layer without its α/r scale, a KD loss without T²)."""

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from llmup_lib.core.models import build_model
from llmup_lib.core.tokenizer import load_tokenizer
from llmup_lib.methods.distill import kd_loss

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def cell(notebook: str, cell_id: str) -> str:
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def definitions(source: str) -> str:
    """Only the imports and function definitions of a cell: what it defines, not what it runs."""
    tree = ast.parse(source)
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    return ast.unparse(ast.Module([n for n in tree.body if isinstance(n, keep)], type_ignores=[]))


@pytest.fixture(scope="module")
def lora_namespace():
    tok = load_tokenizer()
    base = build_model("pico", tok, 32, seed=0)
    blocks = torch.randint(0, len(tok), (32, 33), generator=torch.Generator().manual_seed(0))
    namespace = {"torch": torch, "base": base, "domain_train": blocks}
    exec(cell("03_lora_peft.ipynb", "lora-layer"), namespace)
    return namespace


def test_03s_lora_layer_trains_as_peft_does(lora_namespace):
    namespace = dict(lora_namespace)
    exec(cell("03_lora_peft.ipynb", "lora-vs-peft"), namespace)
    assert namespace["lora_vs_peft"] <= 1e-5  # the notebook's check
    losses = namespace["losses"]["ours"]
    assert losses[-1] < losses[0]  # and it trained


def test_03s_check_fails_for_a_lora_layer_without_its_scale(lora_namespace):
    namespace = dict(lora_namespace)

    class NoScale(namespace["LoRALinear"]):
        def forward(self, x):
            return self.base_layer(x) + (x @ self.A.T) @ self.B.T  # the α/r factor forgotten

    namespace["LoRALinear"] = NoScale
    exec(cell("03_lora_peft.ipynb", "lora-vs-peft"), namespace)
    assert namespace["lora_vs_peft"] > 1e-3


@pytest.fixture(scope="module")
def kd_by_hand():
    namespace = {"torch": torch}
    exec(definitions(cell("06_distillation.ipynb", "kd-loss-by-hand")), namespace)
    return namespace["kd_loss_by_hand"]


def logits_and_labels():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, 11, generator=g), 3 * torch.randn(2, 5, 11, generator=g)
    labels = torch.randint(0, 11, (2, 5), generator=g)
    labels[0, :2] = -100  # a masked prompt
    return student, teacher, labels


@pytest.mark.parametrize("alpha, T", [(0.5, 2.0), (1.0, 1.0), (0.9, 4.0), (0.0, 3.0)])
def test_06s_kd_loss_by_hand_is_the_librarys(kd_by_hand, alpha, T):
    student, teacher, labels = logits_and_labels()
    mine = kd_by_hand(student, teacher, labels, alpha, T)
    library = kd_loss(student, teacher, labels, alpha=alpha, temperature=T)
    assert abs(float(mine - library)) < 1e-5


def test_06s_check_fails_for_a_kd_loss_without_t_squared(kd_by_hand):
    student, teacher, labels = logits_and_labels()
    T = 4.0
    library = kd_loss(student, teacher, labels, alpha=0.9, temperature=T)
    hard = torch.nn.functional.cross_entropy(student[labels != -100], labels[labels != -100])
    soft = (kd_by_hand(student, teacher, labels, 1.0, T)) / T**2  # the T² factor dropped
    broken = 0.9 * soft + 0.1 * hard
    assert abs(float(broken - library)) > 1e-2
