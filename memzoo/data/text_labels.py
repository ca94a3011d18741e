"""Labelled text from a CSV, TSV or JSONL file: one example a row, a text and a class label.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "reviews.csv"
>>> _ = path.write_text('text,label\\n"Loved it, truly",pos\\nDull and slow,neg\\n')
>>> data = load_text_labels(path)
>>> data.texts, data.labels, data.classes
(['Loved it, truly', 'Dull and slow'], ['pos', 'neg'], ['neg', 'pos'])
>>> data.label_ids()
[1, 0]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memzoo.data.text_files import column_values, read_records
from memzoo.errors import MemzooError


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with one label each, as read from ``source``.

    Attributes:
        texts: the example texts, in file order.
        labels: the label of each text (as text; numeric labels become their decimal text).
        lines: the 1-based line of the file each example came from (for error messages).
        source: the file they were read from.
    """

    texts: list[str]
    labels: list[str]
    lines: list[int]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted: class id ``i`` is ``classes[i]``."""
        return sorted(set(self.labels))

    def label_ids(self, classes: list[str] | None = None) -> list[int]:
        """Each label as its index in ``classes`` (default: :attr:`classes`)."""
        index = {name: i for i, name in enumerate(classes or self.classes)}
        return [index[label] for label in self.labels]


def load_text_labels(
    path: str | Path, text_column: str = "text", label_column: str = "label"
) -> LabelledTexts:
    """Read texts and labels from ``path`` (``.csv``, ``.tsv``, ``.jsonl``; header row for
    CSV/TSV).

    Raises ``MemzooError`` naming the file (and line) for a missing or empty file, bad
    UTF-8, a ragged row, invalid JSON, a missing column, an empty label, or a file whose
    rows all carry the same label (nothing to classify).
    """
    columns, records = read_records(path)
    texts = column_values(path, columns, records, text_column)
    labels = [label.strip() for label in column_values(path, columns, records, label_column)]
    for record, label in zip(records, labels):
        if not label:
            raise MemzooError(f"{path}:{record.line}: empty label in column {label_column!r}")
    if len(set(labels)) < 2:
        raise MemzooError(
            f"{path}: every row has the label {labels[0]!r}; classification needs at least 2 classes"
        )
    return LabelledTexts(texts, labels, [r.line for r in records], str(path))
