"""One loader for every text source: ``load_corpus(source)`` -> DatasetDict(train, validation).

``source`` can be

* ``"general"`` or ``"domain"``: the suite's generated corpora (see ``world.py``); these keep
  their ``logprob_bits`` and ``n_chars`` columns, so the true entropy floor can be computed;
* a text file: documents are its paragraphs (split on blank lines), or ~1000-character chunks
  if it has no blank lines; the last ``val_fraction`` of them is the validation split;
* a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``;
* anything else: a dataset name on the Hugging Face Hub (needs the internet).

Every other source comes back with a single ``text`` column. Mistakes (a missing file, an empty
or binary one, a wrong column, no internet) raise an error that names the value and the fix.
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict

from ..hub import hub_unreachable
from ..world.stories import domain_corpus, general_corpus

WORLD_SOURCES = {"general": general_corpus, "domain": domain_corpus}
CHUNK_CHARS = 1000  # document size for text files without blank lines
_PATH_HINTS = (".txt", ".text", ".md", ".csv", ".json", ".jsonl", ".arrow", ".parquet")
_FIX = ("pass a local text file, a folder saved with Dataset.save_to_disk, "
        "or one of 'general', 'domain'")


def load_corpus(source: str, n_train: int | None = None, n_val: int | None = None,
                seed: int = 0, text_column: str = "text", val_fraction: float = 0.1
                ) -> DatasetDict:
    """Load ``source`` as train/validation splits with a ``text`` column (see module doc).

    ``n_train``/``n_val`` cap the split sizes (for the generated corpora they are the sizes,
    default 2000 and 200); ``seed`` picks the generated sample or the validation rows.
    """
    source = str(source)
    for name, n, least in (("n_train", n_train, 1), ("n_val", n_val, 0)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)
                              or n < least):
            raise ValueError(f"{name}={n!r} must be a whole number >= {least} (or None for "
                             f"all documents); pass e.g. {name}={200 if least else 20}.")
    if source in WORLD_SOURCES:
        n_train = 2000 if n_train is None else n_train
        n_val = 200 if n_val is None else n_val
        return WORLD_SOURCES[source](n_train, n_val, seed=seed)
    path = Path(source).expanduser()
    if path.is_dir():
        dd = _from_saved(path, text_column, val_fraction, seed)
    elif path.is_file():
        dd = _split_last(_read_documents(path), val_fraction, source)
    elif _looks_like_path(source):
        raise FileNotFoundError(f"No file or folder at {source!r}; check the path, or {_FIX}.")
    else:
        dd = _from_hub(source, text_column, val_fraction, seed)
    return _cap(dd, n_train, n_val)


# ----------------------------------------------------------------------------- text files
def _read_documents(path: Path) -> list[str]:
    """Paragraphs (blank-line separated), or fixed-size chunks when there are none."""
    raw = path.read_bytes()
    # A byte-order mark names the encoding: UTF-16 (Windows editors' "Unicode") or UTF-8 with a
    # BOM; the mark itself is not text and must not start the first document.
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    if encoding != "utf-16" and b"\x00" in raw:
        raise ValueError(f"{str(path)!r} looks like a binary file (it contains NUL bytes); "
                         "pass a plain UTF-8 text file.")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r} is not valid {encoding.upper().replace('-SIG', '')} "
                         "text; re-save it as UTF-8 (or pass a plain text file).") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # Windows and old Mac line ends
    if not text.strip():
        raise ValueError(f"{str(path)!r} is empty (or only whitespace); pass a file with text.")
    docs = [p.strip() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    if len(docs) == 1:
        docs = _chunks(docs[0], CHUNK_CHARS)
    return docs


def _chunks(text: str, size: int) -> list[str]:
    """Cut ``text`` into pieces of about ``size`` characters, at a space where possible."""
    out = []
    while len(text) > size:
        cut = text.rfind(" ", size // 2, size)
        cut = size if cut == -1 else cut
        out.append(text[:cut].strip())
        text = text[cut:]
    out.append(text.strip())
    return [c for c in out if c]


def _split_last(docs: list[str], val_fraction: float, source: str) -> DatasetDict:
    if len(docs) < 2:
        raise ValueError(f"{source!r} holds a single short document; it needs at least two "
                         "(separate paragraphs with a blank line, or add more text).")
    n_val = min(max(1, round(val_fraction * len(docs))), len(docs) - 1)
    return DatasetDict({"train": Dataset.from_dict({"text": docs[:-n_val]}),
                        "validation": Dataset.from_dict({"text": docs[-n_val:]})})


# ----------------------------------------------------------------------------- datasets
def _from_saved(path: Path, text_column: str, val_fraction: float, seed: int) -> DatasetDict:
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise ValueError(f"The folder {str(path)!r} is not a saved dataset; {_FIX}.") from None
    return _standardize(loaded, text_column, val_fraction, seed, str(path))


def _from_hub(name: str, text_column: str, val_fraction: float, seed: int) -> DatasetDict:
    message = (f"Could not load {name!r} from the Hugging Face Hub (offline or unknown name, "
               f"and no local file or folder has that name); connect to the internet, or {_FIX}.")
    if hub_unreachable():
        raise ValueError(message)
    try:
        loaded = datasets.load_dataset(name)
    except Exception as err:  # connection, not-found and offline errors all read the same here
        raise ValueError(message) from err
    return _standardize(loaded, text_column, val_fraction, seed, name)


def _standardize(loaded, text_column: str, val_fraction: float, seed: int, source: str
                 ) -> DatasetDict:
    """Make a train/validation DatasetDict with only a ``text`` column."""
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    if "train" not in loaded:
        raise ValueError(f"{source!r} has no 'train' split (splits: {', '.join(loaded)}); "
                         "save one named 'train'.")
    val_name = next((s for s in ("validation", "valid", "test") if s in loaded), None)
    splits = {"train": loaded["train"], "validation": loaded[val_name] if val_name else None}
    for name, ds in splits.items():
        if ds is not None and text_column not in ds.column_names:
            raise ValueError(f"Column {text_column!r} not found in {source!r} (columns: "
                             f"{', '.join(ds.column_names)}); pass text_column= one of those.")
    if splits["validation"] is None:  # carve a seeded validation split out of train
        n = len(splits["train"])
        if n < 2:
            raise ValueError(f"{source!r} has {n} row(s); it needs at least two to split off "
                             "a validation set.")
        parts = splits["train"].train_test_split(test_size=max(1, round(val_fraction * n)),
                                                  seed=seed)
        splits = {"train": parts["train"], "validation": parts["test"]}
    return DatasetDict({name: _text_only(ds, text_column) for name, ds in splits.items()})


def _text_only(ds: Dataset, text_column: str) -> Dataset:
    ds = ds.select_columns([text_column])
    return ds.rename_column(text_column, "text") if text_column != "text" else ds


def _cap(dd: DatasetDict, n_train: int | None, n_val: int | None) -> DatasetDict:
    for split, n in (("train", n_train), ("validation", n_val)):
        if n is not None and n < len(dd[split]):
            dd[split] = dd[split].select(range(n))
    return dd


def _looks_like_path(source: str) -> bool:
    """Hub names look like 'name' or 'owner/name'; paths start with . / ~ or end in a file type."""
    if source.startswith((".", "/", "~", "\\")) or source.lower().endswith(_PATH_HINTS):
        return True
    return source.count("/") > 1 or "\\" in source
