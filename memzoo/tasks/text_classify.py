"""Text classification: a user's labelled text file, or a generated separable corpus.

Shape legend: N examples, T ``seq_len``, K classes.

``inputs[n]`` is the text's token ids, cut to its first T tokens and **left**-padded with
``<pad>`` (id 0), so the last real token sits at the final position, where the ``classify``
head reads; ``targets[n]`` is the class id (a ``[N]`` tensor). Class ids index
:attr:`TextClassify.class_names` (the sorted distinct labels of a file).

- ``path`` set: rows of a CSV/TSV/JSONL file (see :func:`memzoo.data.text_labels.load_text_labels`). The
  file is split once into a training and a held-out part by ``split_seed``
  (``test_fraction`` of the rows held out), so every training seed is scored on the same rows.
  The tokenizer is fitted on the training part only.
- no ``path``: the generated review-like corpus of :mod:`memzoo.tasks._text_corpus`.

The tokenizer (``bpe``, ``char`` or ``word``; default ``word`` for the generated corpus, ``bpe``
for a file) and the class names are saved with a checkpoint by :meth:`TextClassify.save_artifacts`.

Worked example (the generated corpus, word tokens, two classes):

>>> task = TextClassify(seq_len=12)
>>> data = task.generate(num_examples=2, seed=0)
>>> data.inputs[0].tolist()
[0, 0, 0, 0, 0, 0, 42, 46, 33, 44, 24, 18]
>>> task.text_tokenizer.decode(data.inputs[0].tolist()), data.targets.tolist(), task.class_names
('loved delightful at superb was movie', [0, 1], ['positive', 'negative'])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, PrivateAttr, field_validator, model_validator

from memzoo.data.text_files import table_format
from memzoo.data.text_labels import load_text_labels
from memzoo.data.text_tokenizers import PAD_ID, fit_tokenizer, load_tokenizer, pad_batch
from memzoo.errors import MemzooError, first_line
from memzoo.files import make_folder, write_file
from memzoo.metrics.classifiers import tfidf_logreg_baseline
from memzoo.metrics.confusion import majority_baseline
from memzoo.parsing import load_json_text
from memzoo.tasks import _text_corpus as corpus
from memzoo.tasks._real_data import hold_out
from memzoo.tasks.base import VALIDATION_SEED_OFFSET, DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
REFERENCE_SEED = 12345  # the generated corpus's tokenizer is fitted on sentences of this seed
REFERENCE_SIZE = 2000


@register_task("text_classify")
class TextClassify(Task):
    """Classify texts: a user's CSV/TSV/JSONL file (``path``) or a generated corpus."""

    description = "classify texts from a CSV/TSV/JSONL file (path=...) or a generated review corpus"
    head = "classify"

    seq_len: int = Field(32, ge=1, description="max tokens per text (longer are cut, shorter left-padded)")
    path: str | None = Field(
        None, description="labelled text file (.csv/.tsv/.jsonl); none: generated corpus"
    )
    text_column: str = Field("text", description="column holding the text")
    label_column: str = Field("label", description="column holding the class label")
    tokenizer: Literal["bpe", "char", "word"] | None = Field(
        None, description="bpe, char or word; default word (generated corpus) / bpe (file)"
    )
    vocab_size: int = Field(2000, ge=8, description="BPE vocabulary size; cap for char/word")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of a file's rows held out")
    split_seed: int = Field(0, description="seed of a file's train/held-out split")
    num_classes: int = Field(2, ge=2, le=corpus.MAX_CLASSES, description="classes of the generated corpus")

    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _path_is_a_file(cls, value: str | None) -> str | None:
        if value is not None:
            if not Path(value).is_file():
                raise ValueError(f"file {value!r} does not exist")
            table_format(value)  # an unknown suffix fails now, naming the accepted ones
        return value

    @model_validator(mode="after")
    def _generated_only_options(self):
        if self.path is not None and "num_classes" in self.model_fields_set:
            raise ValueError(
                "num_classes applies to the generated corpus only; a file's classes are its labels"
            )
        return self

    # ---- data and vocabularies, prepared once -------------------------------------------
    @property
    def tokenizer_kind(self) -> str:
        return self.tokenizer or ("word" if self.path is None else "bpe")

    def _prepared(self) -> dict[str, Any]:
        if not self._cache:
            if self.path is None:
                gen = torch.Generator().manual_seed(REFERENCE_SEED)
                reference, _ = corpus.generate_corpus(REFERENCE_SIZE, self.num_classes, gen)
                texts = reference + [" ".join(corpus.all_words(self.num_classes))]
                self._cache["classes"] = corpus.class_names(self.num_classes)
            else:
                data = load_text_labels(self.path, self.text_column, self.label_column)
                if len(data) < 2:
                    raise MemzooError(f"{self.path}: needs at least 2 rows to hold some out, has {len(data)}")
                order = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.split_seed))
                num_test = min(max(1, round(len(data) * self.test_fraction)), len(data) - 1)
                self._cache.update(
                    classes=data.classes,
                    file_texts=data.texts,
                    file_labels=torch.tensor(data.label_ids(), dtype=torch.long),
                    test_rows=order[:num_test],
                    train_rows=order[num_test:],
                )
                texts = [data.texts[i] for i in order[num_test:].tolist()]
            self._cache["tokenizer"] = fit_tokenizer(self.tokenizer_kind, texts, self.vocab_size)
        return self._cache

    @property
    def text_tokenizer(self):
        """The fitted tokenizer (``encode``/``decode``/``save``)."""
        return self._prepared()["tokenizer"]

    @property
    def class_names(self) -> list[str]:
        return list(self._prepared()["classes"])

    @property
    def input_vocab_size(self) -> int:
        return self.text_tokenizer.vocab_size

    @property
    def output_vocab_size(self) -> int:
        return len(self.class_names)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """``LongTensor [N, T]``: each text's ids, cut to T and left-padded."""
        tok = self.text_tokenizer
        return pad_batch([tok.encode(t) for t in texts], self.seq_len, side="left")

    # ---- the Task interface ------------------------------------------------------------
    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        """Generated corpus: fresh sentences. File: rows drawn from the training part, in a
        random order, each used once before any repeats (a small file is cycled)."""
        prep = self._prepared()
        if self.path is None:
            texts, labels = corpus.generate_corpus(num_examples, self.num_classes, generator)
            return TaskData(self.encode_texts(texts), labels)
        return self._file_rows(self._draw_rows(prep["train_rows"], num_examples, generator))

    @staticmethod
    def _draw_rows(pool: torch.Tensor, num_examples: int, generator: torch.Generator) -> torch.Tensor:
        """``num_examples`` of ``pool``'s rows in random order, each once before any repeats."""
        rounds = -(-num_examples // len(pool)) if num_examples else 0
        rows = torch.cat(
            [pool[torch.randperm(len(pool), generator=generator)] for _ in range(rounds)] or [pool[:0]]
        )[:num_examples]
        return rows

    def _file_rows(self, rows: torch.Tensor) -> TaskData:
        prep = self._prepared()
        texts = [prep["file_texts"][i] for i in rows.tolist()]
        return TaskData(self.encode_texts(texts), prep["file_labels"][rows])

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """``num_train`` training examples drawn with ``seed``; held-out: a file's held-out
        part (its first ``num_test`` rows, the same for every seed), or generated sentences
        from another seed."""
        if self.path is None:
            return super().split(num_train, num_test, seed)
        return self.generate(num_train, seed), self._file_rows(self._prepared()["test_rows"][:num_test])

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """Generated corpus: three seeds (see ``Task.splits``). File: a seeded
        ``VALIDATION_FRACTION`` of the training rows is set aside for validation before the
        training examples are drawn from the rest; the test part is the file's held-out rows."""
        if self.path is None:
            return super().splits(num_train, num_validation, num_test, seed)
        prep = self._prepared()
        pool = prep["train_rows"]
        kept, held = hold_out(len(pool), seed + VALIDATION_SEED_OFFSET)
        rows = self._draw_rows(pool[kept], num_train, torch.Generator().manual_seed(seed))
        return DataSplits(
            self._file_rows(rows),
            self._file_rows(pool[held][:num_validation]),
            self._file_rows(prep["test_rows"][:num_test]),
        )

    def texts_of(self, data: TaskData) -> list[str]:
        """The text each row of ``data`` holds as the model reads it (cut to ``seq_len``
        tokens, padding dropped), decoded by the task's tokenizer."""
        tok = self.text_tokenizer
        return [tok.decode([i for i in row if i != PAD_ID]) for row in data.inputs.tolist()]

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """Model-free classifiers fitted on ``train``, scored on the held-out texts ``test``:

        - ``majority_accuracy``: always the class most frequent in ``train``;
        - ``tfidf_logreg_accuracy`` and ``tfidf_logreg_f1`` (macro, as the run's ``f1``):
          TF-IDF of word 1-2-grams + logistic regression (scikit-learn,
          ``memzoo.metrics.classifiers``) on the texts as the model reads them
          (:meth:`texts_of`: the same ``seq_len`` tokens, decoded).
        """
        out = {"majority_accuracy": majority_baseline(train.targets, test.targets)["accuracy"]}
        if len(train) and len(test):
            scores = tfidf_logreg_baseline(
                self.texts_of(train), train.targets, self.texts_of(test), test.targets
            )
            out.update(tfidf_logreg_accuracy=scores["accuracy"], tfidf_logreg_f1=scores["f1"])
        return out

    # ---- using a trained model ---------------------------------------------------------
    def save_artifacts(self, directory: str | Path) -> list[Path]:
        """Write the tokenizer (``tokenizer.json``) and class names (``labels.json``) into a
        checkpoint directory, next to ``model.safetensors``."""
        directory = make_folder(directory, "checkpoint folder")
        labels = write_file(
            directory / LABELS_FILE, json.dumps({"classes": self.class_names, "seq_len": self.seq_len})
        )
        return [self.text_tokenizer.save(directory / TOKENIZER_FILE), labels]

    def predict(self, model, texts: list[str]) -> list[str]:
        """Class names a trained ``classify`` model gives ``texts``."""
        return predict_labels(model, self.text_tokenizer, self.class_names, self.seq_len, texts)


def predict_labels(model, tokenizer, classes: list[str], seq_len: int, texts: list[str]) -> list[str]:
    """Class names a ``classify``-head model gives ``texts`` (tokenized and left-padded)."""
    inputs = pad_batch([tokenizer.encode(t) for t in texts], seq_len, side="left")
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        logits, _ = model(inputs.to(device))  # [N, K]
    return [classes[i] for i in logits.argmax(-1).tolist()]


def load_artifacts(directory: str | Path):
    """``(tokenizer, classes, seq_len)`` saved by :meth:`TextClassify.save_artifacts`."""

    directory = Path(directory)
    labels = directory / LABELS_FILE
    if not labels.is_file():
        raise MemzooError(f"{directory}: no {LABELS_FILE}; save it with TextClassify.save_artifacts")
    try:
        meta = load_json_text(labels.read_text(encoding="utf-8"), str(labels))
        classes, seq_len = meta["classes"], meta["seq_len"]
    except MemzooError:
        raise  # too deep or too long: already one line naming the file
    except (ValueError, KeyError, TypeError) as err:  # malformed JSON, missing keys, not a mapping
        raise MemzooError(
            f"{labels}: not a labels file of TextClassify.save_artifacts ({first_line(err, 120)})"
        ) from None
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise MemzooError(f"{labels}: 'classes' must be a list of class names")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise MemzooError(f"{labels}: 'seq_len' must be a positive integer, got {seq_len!r}")
    return load_tokenizer(directory / TOKENIZER_FILE), classes, seq_len
