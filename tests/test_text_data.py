"""Text loaders and tokenizers: files read right, malformed files rejected with the file and line
named, tokenizers round-trip and come back identical from their saved JSON."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memzoo.data.parallel_text import load_parallel_text
from memzoo.data.text_labels import load_text_labels
from memzoo.data.text_tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    fit_tokenizer,
    load_tokenizer,
    pad_batch,
)
from memzoo.errors import ConfigError, MemzooError

CORPUS = ["the film was great", "a dull and tedious plot", "Ünïcödé çafé — naïve 😀", "tabs\tand\nnewlines"]


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---- labelled text ------------------------------------------------------------------------


def test_csv_tsv_jsonl_read_the_same_examples(tmp_path):
    csv_path = write(tmp_path, "a.csv", 'id,text,label\n1,"Loved it, truly",pos\n2,"He said ""meh""",neg\n')
    tsv_path = write(tmp_path, "a.tsv", 'text\tlabel\nLoved it, truly\tpos\nHe said "meh"\tneg\n')
    jsonl_path = write(
        tmp_path,
        "a.jsonl",
        '{"text": "Loved it, truly", "label": "pos"}\n\n{"text": "He said \\"meh\\"", "label": "neg"}\n',
    )
    for path in (csv_path, tsv_path, jsonl_path):
        data = load_text_labels(path)
        assert data.texts == ["Loved it, truly", 'He said "meh"'], path
        assert data.labels == ["pos", "neg"] and data.classes == ["neg", "pos"] and data.label_ids() == [1, 0]


def test_custom_columns_and_numeric_labels(tmp_path):
    path = write(tmp_path, "r.jsonl", '{"review": "good", "stars": 5}\n{"review": "bad", "stars": 1}\n')
    data = load_text_labels(path, text_column="review", label_column="stars")
    assert data.labels == ["5", "1"] and data.lines == [1, 2]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, r"missing\.csv: file does not exist"),
        ("empty.csv", "  \n\n", r"empty\.csv: file is empty"),
        ("bad.csv", b"text,label\nok,pos\ncaf\xe9,neg\n", r"bad\.csv:3:4: not valid UTF-8 \(byte 0xe9\)"),
        ("ragged.csv", "text,label\nfine,pos\nno label here\nx,neg\n", r"ragged\.csv:3: row has 1 field"),
        ("ragged.tsv", "text\tlabel\nfine\tpos\nextra\tneg\toops\n", r"ragged\.tsv:3: row has 3 field"),
        (
            "cols.csv",
            "body,label\nhi,pos\n",
            r"cols\.csv: no column 'text'; the file has columns: body, label",
        ),
        (
            "json.jsonl",
            '{"text": "a", "label": "x"}\n{"text": "b", label: 1}\n',
            r"json\.jsonl:2:15: invalid JSON",
        ),
        ("list.jsonl", '["a", "x"]\n', r"list\.jsonl:1: expected one JSON object"),
        (
            "nokey.jsonl",
            '{"text": "a", "label": "x"}\n{"text": "b"}\n',
            r"nokey\.jsonl:2: the record has no 'label'",
        ),
        ("blank.csv", "text,label\na,pos\nb,  \n", r"blank\.csv:3: empty label"),
        ("one.csv", "text,label\na,pos\nb,pos\n", r"one\.csv: every row has the label 'pos'"),
        ("header.csv", "text,label\n", r"header\.csv: no data rows"),
        ("notes.txt", "text,label\na,b\n", r"unknown file type '\.txt'"),
    ],
)
def test_malformed_labelled_files_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name if content is None else write(tmp_path, name, content)
    with pytest.raises(MemzooError, match=message):
        load_text_labels(path)


# ---- parallel text ------------------------------------------------------------------------


def test_anki_export_with_preamble_and_attribution(tmp_path):
    path = write(
        tmp_path,
        "fra.txt.tsv",
        "#separator:tab\n#html:false\nGo.\tVa !\tCC-BY 2.0 (France)\n"
        '\nI said "hi".\tJ\'ai dit « salut ».\tCC-BY\n',
    )
    pairs = load_parallel_text(path)
    assert pairs.sources == ["Go.", 'I said "hi".']
    assert pairs.targets == ["Va !", "J'ai dit « salut »."] and pairs.lines == [3, 5]


def test_tatoeba_layout_by_column(tmp_path):
    path = write(tmp_path, "tatoeba.tsv", "1276\tLet's try.\t4757\tEssayons.\n")
    pairs = load_parallel_text(path, source_column=1, target_column=3)
    assert (pairs.sources, pairs.targets) == (["Let's try."], ["Essayons."])


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "Go.\tVa !\nHello\n",
            r"p\.tsv:2: expected at least 2 tab-separated fields .* found 1; a ragged row",
        ),
        ("Go.\t \n", r"p\.tsv:1: empty sentence in column 1"),
        (b"Go.\tVa !\nNo\t\xff\xfe\n", r"p\.tsv:2:4: not valid UTF-8 \(byte 0xff\)"),
        ("#only a comment\n", r"p\.tsv: no sentence pairs"),
        ("", r"p\.tsv: file is empty"),
    ],
)
def test_malformed_parallel_files(tmp_path, content, message):
    with pytest.raises(MemzooError, match=message):
        load_parallel_text(write(tmp_path, "p.tsv", content))


def test_parallel_columns_are_checked(tmp_path):
    path = write(tmp_path, "p.tsv", "a\tb\n")
    with pytest.raises(ConfigError, match="must differ"):
        load_parallel_text(path, source_column=1, target_column=1)


# ---- tokenizers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bpe():
    return fit_tokenizer("bpe", CORPUS * 20, vocab_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_bpe_round_trips_any_text(bpe, text):
    ids = bpe.encode(text)
    assert all(len(SPECIAL_TOKENS) <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text


@given(text=st.text(alphabet="abc d", max_size=30))
def test_char_round_trips_seen_characters_and_marks_unseen(text):
    tok = fit_tokenizer("char", ["abc d"])
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("a?") == [tok.encode("a")[0], UNK_ID]


def test_word_tokenizer_normalises_spaces_and_caps_the_vocabulary():
    tok = fit_tokenizer("word", ["b a a", "c a b"], vocab_size=6)  # 4 specials + the 2 commonest
    assert tok.symbols[4:] == ["a", "b"] and tok.vocab_size == 6
    assert tok.encode("a  b\tc") == [4, 5, UNK_ID] and tok.decode([4, 5, PAD_ID, 5]) == "a b b"


@pytest.mark.parametrize("kind", ["bpe", "char", "word"])
def test_saved_tokenizer_loads_identical(tmp_path, kind):
    tok = fit_tokenizer(kind, CORPUS * 5, vocab_size=280)
    path = tok.save(tmp_path / "tokenizer.json")
    back = load_tokenizer(path)
    assert back.kind == kind and back.vocab_size == tok.vocab_size
    for text in CORPUS + ["unseen words: zebra!"]:
        assert back.encode(text) == tok.encode(text)
        assert back.decode(back.encode(text)) == tok.decode(tok.encode(text))
    if kind == "bpe":  # the Hugging Face format itself: other tools read the same file
        from tokenizers import Tokenizer

        assert Tokenizer.from_file(str(path)).encode(CORPUS[0], add_special_tokens=False).ids == tok.encode(
            CORPUS[0]
        )


@pytest.mark.parametrize("kind", ["bpe", "char", "word"])
def test_special_token_ids_are_fixed(kind):
    tok = fit_tokenizer(kind, CORPUS, vocab_size=280)
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tok.decode([PAD_ID, BOS_ID, EOS_ID]) == ""


def test_load_tokenizer_rejects_other_files(tmp_path):
    with pytest.raises(MemzooError, match="not a memzoo or Hugging Face tokenizer"):
        load_tokenizer(write(tmp_path, "x.json", json.dumps({"vocab": []})))
    with pytest.raises(MemzooError, match="not a tokenizer JSON"):
        load_tokenizer(write(tmp_path, "y.json", "{oops"))
    with pytest.raises(MemzooError, match="does not exist"):
        load_tokenizer(tmp_path / "none.json")


def test_bad_tokenizer_options():
    with pytest.raises(ConfigError, match="tokenizer must be one of"):
        fit_tokenizer("sentencepiece", CORPUS)
    with pytest.raises(ConfigError, match="vocab_size=100 is too small"):
        fit_tokenizer("bpe", CORPUS, vocab_size=100)


def test_pad_batch_left_and_right():
    seqs = [[5, 6], [], [7, 8, 9, 10]]
    assert pad_batch(seqs, 3, side="left").tolist() == [[0, 5, 6], [0, 0, 0], [7, 8, 9]]
    assert pad_batch(seqs, 3, side="right", fill=-100).tolist() == [[5, 6, -100], [-100] * 3, [7, 8, 9]]
    assert pad_batch(seqs, 3, side="left").dtype == torch.long
