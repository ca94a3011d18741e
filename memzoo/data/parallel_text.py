"""Parallel text for translation: a tab-separated file of ``source<TAB>target`` lines.

This is the layout of Anki/Tatoeba sentence-pair exports: no header, a sentence pair a line,
extra columns (attribution, sentence ids) ignored. Lines starting with ``#`` (Anki's
``#separator:tab`` preamble) and blank lines are skipped. For Tatoeba's
``id<TAB>source<TAB>id<TAB>target`` layout pass ``source_column=1, target_column=3``.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
>>> _ = path.write_text("#separator:tab\\nGo.\\tVa !\\tCC-BY 2.0\\nHi.\\tSalut !\\n")
>>> pairs = load_parallel_text(path)
>>> pairs.sources, pairs.targets
(['Go.', 'Hi.'], ['Va !', 'Salut !'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memzoo.data.text_files import read_utf8
from memzoo.errors import ConfigError, MemzooError


@dataclass(frozen=True)
class ParallelText:
    """Sentence pairs: ``sources[i]`` translates to ``targets[i]``; ``lines[i]`` is its line."""

    sources: list[str]
    targets: list[str]
    lines: list[int]
    source: str

    def __len__(self) -> int:
        return len(self.sources)


def load_parallel_text(
    path: str | Path,
    source_column: int = 0,
    target_column: int = 1,
    comment_prefix: str | None = "#",
) -> ParallelText:
    """Read sentence pairs from a tab-separated file (columns counted from 0).

    Raises ``MemzooError`` naming the file and line for a missing or empty file, bad UTF-8,
    a row with too few fields (a ragged row) and an empty source or target sentence.
    """
    for name, value in (("source_column", source_column), ("target_column", target_column)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    if source_column == target_column:
        raise ConfigError(f"source_column and target_column must differ, both are {source_column}")
    needed = max(source_column, target_column) + 1
    sources, targets, lines = [], [], []
    for line_no, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip() or (comment_prefix and line.startswith(comment_prefix)):
            continue
        fields = line.split("\t")
        if len(fields) < needed:
            raise MemzooError(
                f"{path}:{line_no}: expected at least {needed} tab-separated fields "
                f"(source in column {source_column}, target in column {target_column}), "
                f"found {len(fields)}; a ragged row"
            )
        pair = fields[source_column].strip(), fields[target_column].strip()
        for column, text in zip((source_column, target_column), pair):
            if not text:
                raise MemzooError(f"{path}:{line_no}: empty sentence in column {column}")
        sources.append(pair[0])
        targets.append(pair[1])
        lines.append(line_no)
    if not sources:
        raise MemzooError(f"{path}: no sentence pairs (only comments or blank lines)")
    return ParallelText(sources, targets, lines, str(path))
