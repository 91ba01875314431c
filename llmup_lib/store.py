"""Where the suite's files live, and how they are written so that a crash never leaves half a file.

- The shipped data (tokenizer, base models, tables) lives inside the package, ``llmup_lib/data``,
  found through ``importlib.resources``: the same in a checkout, an editable install and a wheel.
- Models too large to ship are cached under ``$LLMUP_CACHE`` (default ``~/.cache/llmup``).
- Every write goes to a temporary name beside its target and is renamed into place (``os.replace``
  is atomic on one file system), so a reader sees the old file or the new one, never half.
- A folder's integrity is a manifest: every file's size and SHA-256 in ``manifest.json``, written
  last, so a folder with a valid manifest is whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from importlib import resources
from pathlib import Path

MANIFEST = "manifest.json"


def data_dir() -> Path:
    """The shipped data folder, ``llmup_lib/data`` (read through ``importlib.resources``)."""
    return Path(str(resources.files("llmup_lib") / "data"))


DATA_DIR = data_dir()


def cache_dir(*parts: str) -> Path:
    """Where trained models and tables too large to ship are kept: ``$LLMUP_CACHE`` (default
    ``~/.cache/llmup``), joined with ``parts``."""
    return Path(os.environ.get("LLMUP_CACHE", Path.home() / ".cache" / "llmup"), *parts)


# ----------------------------------------------------------------------------- atomic writes

def _temp_beside(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}")


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (a temp file beside it, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path, obj, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """``obj`` as JSON (one trailing newline), written atomically."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def read_json(path, what: str = "file"):
    """The JSON at ``path``; a file that is not valid JSON raises one sentence naming it and the
    fix (delete it, or remake it), instead of a bare decode error."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"The {what} {str(path)!r} is not valid JSON ({err.__class__.__name__} "
                         "at its start or middle: a cut-off or overwritten file); delete it or "
                         "remake it.") from None


@contextlib.contextmanager
def atomic_folder(path):
    """Build a folder in a temp folder beside ``path``; on success it replaces ``path`` (an old
    folder of that name is removed only then), on error the temp folder is removed and ``path``
    is untouched. Yields the temp folder to write into."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- checksums

def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def digest(obj, length: int = 12) -> str:
    """A short SHA-256 of a JSON-able value (keys sorted): the suite's one key for recipes."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]


def write_manifest(folder) -> Path:
    """Record the size and SHA-256 of every file under ``folder`` in ``folder/manifest.json``
    (written atomically, so the manifest itself is whole or absent)."""
    folder = Path(folder)
    files = {str(f.relative_to(folder)): {"bytes": f.stat().st_size, "sha256": file_sha256(f)}
             for f in sorted(folder.rglob("*"))
             if f.is_file() and f.name != MANIFEST and not f.name.startswith(".tmp-")}
    return write_json(folder / MANIFEST, {"format": 1, "files": files})


class ManifestProblem(Exception):
    """What is wrong with a folder's manifest: ``missing`` (no manifest at all: written before
    checksums existed, or not by llmup) or ``damaged`` (a file missing, truncated or changed)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def verify_manifest(folder) -> str | None:
    """``None`` when every file listed in ``folder/manifest.json`` is present with its recorded
    size and SHA-256; otherwise what is wrong, in a few words."""
    try:
        inspect_manifest(folder)
    except ManifestProblem as problem:
        return problem.detail
    return None


def manifest_damage(folder) -> str | None:
    """What damages ``folder`` (a file missing, truncated or changed), or ``None`` when it is
    whole or has no manifest at all (a cache written before checksums existed)."""
    try:
        inspect_manifest(folder)
    except ManifestProblem as problem:
        return None if problem.kind == "missing" else problem.detail
    return None


def inspect_manifest(folder) -> None:
    """Raise ``ManifestProblem`` (``kind`` ``"missing"`` or ``"damaged"``) unless every file
    listed in ``folder/manifest.json`` is present with its recorded size and SHA-256."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        raise ManifestProblem("missing", f"no {MANIFEST}") from None
    except (ValueError, KeyError, TypeError):
        raise ManifestProblem("damaged", f"{MANIFEST} is corrupt") from None
    for name, meta in files.items():
        path = folder / name
        if not path.is_file():
            raise ManifestProblem("damaged", f"{name} is missing")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise ManifestProblem("damaged", f"{name} is truncated or changed ({size} bytes, "
                                  f"{meta['bytes']} expected)")
        if file_sha256(path) != meta["sha256"]:
            raise ManifestProblem("damaged", f"{name} fails its SHA-256 checksum")
