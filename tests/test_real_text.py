"""Real text corpora (``memzoo.data.real_text``): the built-in corpora, the user's folder with
its link safety, and the split by a stable hash of each document's name."""

from __future__ import annotations

import os

import pytest

from memzoo.data.real_text import CORPORA, Document, corpus_bytes, load_documents, split_documents
from memzoo.errors import ConfigError, MemzooError


def names(documents):
    return [doc.name for doc in documents]


def test_builtin_corpora_are_sorted_named_documents():
    pydoc = load_documents("pydoc")
    assert len(pydoc) > 50 and names(pydoc) == sorted(set(names(pydoc)))
    assert "assert" in names(pydoc) and "assert" in next(d for d in pydoc if d.name == "assert").text
    source = load_documents("python_source")
    assert len(source) > 100 and names(source) == sorted(set(names(source)))
    assert "os.py" in names(source) and not any(n.startswith("_sysconfigdata") for n in names(source))
    assert all("/" not in n for n in names(source))  # top-level modules only, no packages
    assert sum(len(d.text) > 4096 + 65 for d in source) > 100  # a corpus of long documents
    assert abs(corpus_bytes("pydoc") - sum(len(d.text.encode()) for d in pydoc)) == 0
    assert load_documents("pydoc") is not load_documents("pydoc")  # a copy: the cache is safe


def test_unknown_corpus_and_misplaced_folder_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="pydoc, python_source, files"):
        load_documents("wikipedia")
    with pytest.raises(ConfigError, match="folder is required"):
        load_documents("files")
    with pytest.raises(ConfigError, match="folder is used only"):
        load_documents("pydoc", folder=str(tmp_path))
    assert CORPORA == ("pydoc", "python_source", "files")


def test_split_is_disjoint_complete_deterministic_and_stable():
    documents = load_documents("python_source")
    parts = split_documents(documents)
    assert set(parts) == {"train", "validation", "test"}
    seen = [n for part in parts.values() for n in names(part)]
    assert sorted(seen) == names(documents)  # every document once: in exactly one split
    assert all(parts[k] for k in parts) and len(parts["train"]) > 5 * len(parts["test"])
    assert parts == split_documents(list(reversed(documents)))  # order of the input does not matter
    # A document's split depends on its name only (SHA-256, the same in every process and
    # Python version): adding documents moves no other document.
    fixed = split_documents([Document(f"doc{i}", "x") for i in range(10)])
    assert {k: names(v) for k, v in fixed.items()} == {
        "train": ["doc1", "doc2", "doc3", "doc4", "doc5", "doc6", "doc8"],
        "validation": ["doc7", "doc9"],
        "test": ["doc0"],
    }
    more = split_documents([Document(f"doc{i}", "x") for i in range(40)])
    for key, part in fixed.items():
        assert set(names(part)) <= set(names(more[key]))


def test_three_documents_fill_every_split_and_bad_fractions_fail():
    parts = split_documents([Document(f"doc{i}", "x") for i in range(3)])
    assert [len(parts[k]) for k in ("train", "validation", "test")] == [1, 1, 1]
    single = split_documents([Document("only", "x")])  # fewer than 3: its hash decides alone
    assert sorted(len(part) for part in single.values()) == [0, 0, 1]
    with pytest.raises(ConfigError, match="fractions"):
        split_documents([Document("a", "x")], fractions=(0.5, 0.5, 0.0))
    with pytest.raises(ConfigError, match="unique names"):
        split_documents([Document("a", "x"), Document("a", "y")])


def test_files_corpus_reads_txt_and_md_inside_the_folder_only(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first document\n")
    (folder / "sub" / "b.md").write_text("# second\n")
    (folder / "table.csv").write_text("x,y\n1,2\n")  # not text of the corpus
    outside = tmp_path / "secret.txt"
    outside.write_text("must never be read")
    docs = load_documents("files", str(folder))
    assert docs == [Document("a.txt", "first document\n"), Document("sub/b.md", "# second\n")]
    (folder / "a.txt").write_text("edited, longer text\n")
    assert (
        load_documents("files", str(folder))[0].text == "edited, longer text\n"
    )  # cache keyed by size/mtime
    os.symlink(outside, folder / "leak.txt")
    with pytest.raises(MemzooError, match="outside"):
        load_documents("files", str(folder))
    os.unlink(folder / "leak.txt")
    os.symlink(tmp_path, folder / "linked_dir")  # a linked folder is never entered
    assert names(load_documents("files", str(folder))) == ["a.txt", "sub/b.md"]


def test_files_corpus_errors_name_the_folder(tmp_path):
    with pytest.raises(MemzooError, match="does not exist"):
        load_documents("files", str(tmp_path / "missing"))
    with pytest.raises(MemzooError, match=r"no \.txt or \.md files"):
        load_documents("files", str(tmp_path))
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(MemzooError, match="not valid UTF-8"):
        load_documents("files", str(tmp_path))
