"""load_corpus: every source comes back as train/validation with a text column."""

import pytest
from datasets import Dataset, DatasetDict

from llmup_lib.core.corpora import load_corpus


def test_world_sources():
    dd = load_corpus("domain", n_train=30, n_val=5)
    assert {k: len(v) for k, v in dd.items()} == {"train": 30, "validation": 5}
    assert "text" in dd["train"].column_names and "logprob_bits" in dd["train"].column_names
    assert load_corpus("general", 10, 3)["train"][0]["text"]


def test_text_file_paragraphs(tmp_path):
    paragraphs = [f"Paragraph {i} has\ntwo lines." for i in range(20)]
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(paragraphs) + "\n \n\n", encoding="utf-8")
    dd = load_corpus(str(path))
    assert dd["train"]["text"] == paragraphs[:18] and dd["validation"]["text"] == paragraphs[18:]
    assert len(load_corpus(path, n_train=5)["train"]) == 5


def test_text_file_without_blank_lines_is_chunked(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(" ".join(["word"] * 1500), encoding="utf-8")  # 7,499 chars, one line
    dd = load_corpus(str(path))
    chunks = list(dd["train"]["text"]) + list(dd["validation"]["text"])
    assert len(chunks) >= 7 and all(len(c) <= 1000 for c in chunks)
    assert len(dd["validation"]) >= 1


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="empty.txt.*empty"):
        load_corpus(str(path))


@pytest.mark.parametrize("content", [b"abc\x00def\n\nmore", b"caf\xe9 au lait\n\nsecond"])
def test_binary_file(tmp_path, content):
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="data.bin"):
        load_corpus(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_corpus(str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_corpus("nope.txt")


def test_saved_dataset_round_trip(tmp_path):
    rows = {"body": [f"document number {i}" for i in range(40)], "label": list(range(40))}
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "single"))
    dd = load_corpus(str(tmp_path / "single"), text_column="body")
    assert dd["train"].column_names == ["text"] == dd["validation"].column_names
    assert (len(dd["train"]), len(dd["validation"])) == (36, 4)
    assert sorted([*dd["train"]["text"], *dd["validation"]["text"]]) == sorted(rows["body"])

    saved = DatasetDict({"train": Dataset.from_dict({"text": ["a", "b", "c"]}),
                         "validation": Dataset.from_dict({"text": ["d"]})})
    saved.save_to_disk(str(tmp_path / "dict"))
    dd = load_corpus(str(tmp_path / "dict"))
    assert dd["train"]["text"] == ["a", "b", "c"] and dd["validation"]["text"] == ["d"]


def test_saved_dataset_missing_column(tmp_path):
    Dataset.from_dict({"body": ["x", "y", "z"]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match="'text' not found.*body"):
        load_corpus(str(tmp_path / "ds"))


def test_offline_hub_name(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match="'someone/no-such-dataset'.*Hugging Face Hub"):
        load_corpus("someone/no-such-dataset")


@pytest.mark.parametrize("encode", [
    lambda text: text.replace("\n", "\r\n").encode(),  # Windows line ends
    lambda text: b"\xef\xbb\xbf" + text.encode(),  # UTF-8 with a byte-order mark
    lambda text: text.replace("\n", "\r\n").encode("utf-16"),  # Windows editors' "Unicode"
], ids=["crlf", "utf8-bom", "utf16"])
def test_text_files_from_other_editors_give_the_same_documents(tmp_path, encode):
    text = "Mia had a cat.\n\nLeo had a dog named Rex.\n\nThe end of the third story.\n"
    plain, other = tmp_path / "plain.txt", tmp_path / "other.txt"
    plain.write_text(text)
    other.write_bytes(encode(text))
    got = load_corpus(str(other), val_fraction=0.34)
    assert got["train"]["text"] == load_corpus(str(plain), val_fraction=0.34)["train"]["text"]
    assert got["train"]["text"][0] == "Mia had a cat."  # no BOM, no stray carriage return
