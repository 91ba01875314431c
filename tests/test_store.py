"""store.py: atomic writes, readable errors, atomic folders, manifests, digests and where files live."""

import json
import os
from pathlib import Path

import pytest

import llmup_lib
from llmup_lib import store
from llmup_lib.store import (DATA_DIR, MANIFEST, atomic_folder, cache_dir, digest, file_sha256,
                             manifest_damage, read_json, verify_manifest, write_json,
                             write_manifest, write_text)


def _fail_replace(monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(store.os, "replace", boom)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


# ----------------------------------------------------------------------------- atomic files

def test_write_text_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "a.txt"  # the parent folder is made
    write_text(path, "old")
    write_text(path, "new ü")
    assert path.read_text(encoding="utf-8") == "new ü"
    assert _leftovers(path.parent) == []


def test_write_text_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    _fail_replace(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_text(path, "new")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_write_json_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1})
    _fail_replace(monkeypatch)
    with pytest.raises(OSError):
        write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert _leftovers(tmp_path) == []


def test_write_json_format_is_stable(tmp_path):
    """Results files are compared byte for byte: indent 1, keys sorted on request, one newline."""
    path = write_json(tmp_path / "r.json", {"b": 1, "a": [2]}, sort_keys=True)
    assert path.read_text() == '{\n "a": [\n  2\n ],\n "b": 1\n}\n'
    compact = write_json(tmp_path / "c.json", {"b": 1, "a": 2}, indent=None)
    assert compact.read_text() == '{"b": 1, "a": 2}\n'


def test_read_json_corrupt_file_is_one_sentence(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"a": 1,')  # cut off mid-write
    with pytest.raises(ValueError) as info:
        read_json(path, what="results file")
    message = str(info.value)
    assert "results file" in message and str(path) in message and "delete it" in message
    assert "\n" not in message and info.value.__cause__ is None and info.value.__suppress_context__


def test_read_json_reads_valid_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"x": [1, 2]})
    assert read_json(path) == {"x": [1, 2]}


# ----------------------------------------------------------------------------- atomic folders

def test_atomic_folder_success_replaces_old_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with atomic_folder(target) as tmp:
        assert tmp != target and tmp.parent == target.parent and tmp.is_dir()
        (tmp / "weights.bin").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]
    assert _leftovers(tmp_path) == []


def test_atomic_folder_error_leaves_old_folder_and_no_temp(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_folder(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"half")
            raise RuntimeError("crash")
    assert (target / "weights.bin").read_bytes() == b"old"
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]
    assert _leftovers(tmp_path) == []


def test_atomic_folder_clears_a_stale_temp_folder(tmp_path):
    target = tmp_path / "model"
    stale = tmp_path / ".tmp-model"
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"from a killed run")
    with atomic_folder(target) as tmp:
        assert list(tmp.iterdir()) == []
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert not stale.exists()


# ----------------------------------------------------------------------------- manifests

def _folder(tmp_path) -> Path:
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "sub" / "config.json").write_text('{"a": 1}')
    return folder


def test_manifest_written_and_verified(tmp_path):
    folder = _folder(tmp_path)
    path = write_manifest(folder)
    assert path == folder / MANIFEST
    files = json.loads(path.read_text())["files"]
    assert sorted(files) == ["sub/config.json", "weights.bin"]
    assert files["weights.bin"] == {"bytes": 1024, "sha256": file_sha256(folder / "weights.bin")}
    assert verify_manifest(folder) is None
    assert manifest_damage(folder) is None


def test_truncated_file_is_named(tmp_path):
    folder = _folder(tmp_path)
    write_manifest(folder)
    weights = folder / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    for problem in (verify_manifest(folder), manifest_damage(folder)):
        assert problem is not None and "weights.bin" in problem and "truncated" in problem


def test_changed_and_missing_files_are_named(tmp_path):
    folder = _folder(tmp_path)
    write_manifest(folder)
    data = bytearray((folder / "weights.bin").read_bytes())
    data[500] ^= 1  # same size, other bytes
    (folder / "weights.bin").write_bytes(bytes(data))
    assert "weights.bin" in verify_manifest(folder) and "SHA-256" in verify_manifest(folder)
    (folder / "sub" / "config.json").unlink()
    assert verify_manifest(folder) == "sub/config.json is missing"


def test_folder_without_manifest(tmp_path):
    folder = _folder(tmp_path)
    assert verify_manifest(folder) is not None  # not verified ...
    assert manifest_damage(folder) is None  # ... but not damaged either (an older cache)


def test_corrupt_manifest_is_damage(tmp_path):
    folder = _folder(tmp_path)
    (folder / MANIFEST).write_text("{not json")
    assert manifest_damage(folder) is not None and MANIFEST in manifest_damage(folder)


# ----------------------------------------------------------------------------- keys and places

def test_digest_is_stable_and_order_free():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert len(digest("x")) == 12 and len(digest("x", length=16)) == 16
    # pinned: cached models are keyed by it, so a change would orphan every cache
    assert digest({"a": 1}) == "f9d86028c6e0"


def test_file_sha256_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "f"
    path.write_bytes(b"x" * (3 << 20))  # several 1 MiB chunks
    assert file_sha256(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_cache_dir_honours_llmup_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert cache_dir("base", "cpu-abc") == tmp_path / "base" / "cpu-abc"
    monkeypatch.delenv("LLMUP_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("scaling") == tmp_path / "home" / ".cache" / "llmup" / "scaling"


def test_data_dir_is_inside_the_package():
    package = Path(llmup_lib.__file__).resolve().parent
    assert DATA_DIR.resolve() == package / "data"
    assert (DATA_DIR / "tokenizer" / "tokenizer.json").is_file()
    assert os.path.commonpath([DATA_DIR.resolve(), package]) == str(package)
