"""The results helper: headline numbers as a flat JSON object per notebook."""

import json

import numpy as np
import pytest
import torch

from llmup_lib.teaching import results


def test_unset_dir_checks_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(results.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert results.record("05_scaling", r2=0.99, seeds=3) == {"r2": 0.99, "seeds": 3}
    assert list(tmp_path.iterdir()) == []


def test_record_merges_into_one_flat_file(tmp_path, monkeypatch):
    monkeypatch.setenv(results.ENV, str(tmp_path / "res"))
    results.record("05_scaling", r2=0.5, seeds=3)
    results.record("05_scaling", r2=np.float32(0.75), ok=True, loss=torch.tensor(1.5))
    data = json.loads((tmp_path / "res" / "05_scaling.json").read_text())
    assert data == {"r2": 0.75, "seeds": 3, "ok": 1, "loss": 1.5}
    assert not list((tmp_path / "res").glob("*.tmp"))  # written through a temp file
    assert results.collect(tmp_path / "res") == {"05_scaling": data}
    assert results.format_results({"05_scaling": data}) == (
        "05_scaling: loss=1.5, ok=1, r2=0.75, seeds=3")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.9", None, [1, 2],
                                 torch.tensor([1.0, 2.0])])
def test_non_numbers_are_refused_and_nothing_is_written(tmp_path, monkeypatch, bad):
    monkeypatch.setenv(results.ENV, str(tmp_path))
    results.record("02_x", kept=1)
    with pytest.raises(ValueError, match="is not a finite number"):
        results.record("02_x", kept=2, bad=bad)
    assert json.loads((tmp_path / "02_x.json").read_text()) == {"kept": 1}


def test_collect_of_a_missing_folder_is_empty(tmp_path):
    assert results.collect(tmp_path / "nothing") == {}


def test_a_corrupt_results_file_is_one_sentence(tmp_path):
    from llmup_lib.teaching.results import read

    path = tmp_path / "02_full_finetuning.json"
    path.write_text('{"domain_excess": 0.08')  # cut off mid-write by an older tool
    with pytest.raises(ValueError, match="is not valid JSON .* delete it or remake it"):
        read(path)
