"""Real text corpora as named documents, and a stable split of them into train/validation/test.

Corpora (``CORPORA``), each a list of :class:`Document` sorted by name:

- ``"pydoc"``: ``pydoc_data.topics.topics``, the text of CPython's documentation that ships
  with every Python (what ``help("assert")`` prints; PSF licence): one document per topic
  (79 topics, ~466 KB of UTF-8 on Python 3.11; the set depends on the Python version).
  Most topics are short (median ~2 KB); 26 are longer than 4,160 bytes (up to ~63 KB).
- ``"python_source"``: the standard library's own top-level ``.py`` modules (the folder
  ``sysconfig.get_paths()["stdlib"]``, no packages such as ``test`` or ``idlelib``, no
  machine-generated ``_sysconfigdata_*``): one document per file, named by its file name
  (168 files, ~4.7 MB on CPython 3.11, many far longer than 4 KB). A file that is not UTF-8
  is left out.
- ``"files"``: every ``.txt`` / ``.md`` file under the user's ``folder`` (at any depth),
  named by its path relative to the folder (``/``-separated). A link pointing outside the
  folder is refused (nothing outside it is read); a link to a folder is not entered. A
  missing folder, a folder without such files, a file that is not UTF-8 or is empty raise a
  ``MemzooError`` naming the path.

Loaded corpora are cached per process (``functools.lru_cache``); a ``files`` corpus is keyed
by the names, sizes and modification times of its files, so an edited folder is read again.

``split_documents`` assigns each document to a split by a stable hash of its name (SHA-256,
not Python's per-process ``hash``): a document's split never depends on the other documents,
so adding a file to a folder moves no other file between splits, and no document is ever in
two splits.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from memzoo.data.text_files import read_utf8
from memzoo.errors import ConfigError, MemzooError
from memzoo.files import path_inside

CORPORA: tuple[str, ...] = ("pydoc", "python_source", "files")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
FILE_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    """One document of a corpus: ``name`` is stable and unique within the corpus."""

    name: str
    text: str


def check_corpus(corpus: str, folder: str | None) -> None:
    """Raise a :class:`~memzoo.errors.ConfigError` (a ``ValueError``, so a task's validator
    reports it as its own) naming the field when ``corpus`` is not one of :data:`CORPORA`, or
    ``folder`` is missing with ``corpus="files"``, given with another corpus, or not a folder."""
    if corpus not in CORPORA:
        raise ConfigError(f"corpus must be one of {', '.join(CORPORA)}; got {corpus!r}")
    if corpus == "files" and folder is None:
        raise ConfigError("folder is required with corpus=files (a folder of .txt/.md files)")
    if corpus != "files" and folder is not None:
        raise ConfigError(f"folder is used only with corpus=files; got corpus={corpus!r}")
    if folder is not None and not Path(folder).is_dir():
        raise ConfigError(f"folder {folder!r} does not exist or is not a folder")


def load_documents(corpus: str = "pydoc", folder: str | None = None) -> list[Document]:
    """The documents of ``corpus`` (one of ``CORPORA``), sorted by name.

    ``folder`` is required for ``"files"`` and refused for the others. Raises ``ConfigError``
    for an unknown corpus (listing ``CORPORA``) or a misplaced, missing or non-folder
    ``folder`` (:func:`check_corpus`).

    >>> docs = load_documents("pydoc")
    >>> len(docs) > 50, docs == sorted(docs, key=lambda d: d.name)
    (True, True)
    """
    check_corpus(corpus, folder)
    if corpus == "files":
        return list(_load_files(*_files_key(Path(folder))))
    return list(_load_pydoc() if corpus == "pydoc" else _load_python_source())


@lru_cache(maxsize=1)
def _load_pydoc() -> tuple[Document, ...]:
    from pydoc_data.topics import topics  # stdlib; imported when the corpus is asked for

    return tuple(Document(name, text) for name, text in sorted(topics.items()) if text.strip())


@lru_cache(maxsize=1)
def _load_python_source() -> tuple[Document, ...]:
    folder = Path(sysconfig.get_paths()["stdlib"])
    documents = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_sysconfigdata") or not path.is_file():
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip():
            documents.append(Document(path.name, text))
    if not documents:
        raise MemzooError(f"{folder}: no standard-library .py files found (corpus 'python_source')")
    return tuple(documents)


def _files_key(folder: Path) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """``(folder, ((name, size, mtime_ns), ...))`` of the corpus files under ``folder``,
    checked: every one lies inside ``folder`` with links followed."""
    if not folder.exists():
        raise MemzooError(f"{folder}: folder does not exist (corpus 'files')")
    if not folder.is_dir():
        raise MemzooError(f"{folder}: is not a folder (corpus 'files' reads the .txt/.md files in one)")
    names = []
    for parent, dirs, files in os.walk(folder):  # followlinks=False: a linked folder is not entered
        dirs.sort()
        for name in files:
            if Path(name).suffix.lower() in FILE_SUFFIXES:
                names.append((Path(parent) / name).relative_to(folder).as_posix())
    if not names:
        raise MemzooError(f"{folder}: no .txt or .md files in the folder (corpus 'files')")
    entries = []
    for name in sorted(names):
        path = path_inside(folder, name, f"{folder}: {name}")  # refuses a link out of the folder
        stat = path.stat()
        entries.append((name, stat.st_size, stat.st_mtime_ns))
    return str(folder.resolve()), tuple(entries)


@lru_cache(maxsize=8)
def _load_files(folder: str, entries: tuple[tuple[str, int, int], ...]) -> tuple[Document, ...]:
    return tuple(Document(name, read_utf8(Path(folder) / name)) for name, _, _ in entries)


def corpus_bytes(corpus: str = "pydoc", folder: str | None = None) -> int:
    """About the UTF-8 bytes of ``corpus`` from file sizes, without reading a file (``pydoc``:
    the text already in memory); the errors of :func:`load_documents` for a bad argument."""
    if corpus not in CORPORA:
        raise ConfigError(f"corpus must be one of {', '.join(CORPORA)}; got {corpus!r}")
    if corpus == "files":
        if folder is None:
            raise ConfigError("folder is required for corpus 'files' (a folder of .txt/.md files)")
        return sum(size for _, size, _ in _files_key(Path(folder))[1])
    if corpus == "pydoc":
        return sum(len(doc.text.encode("utf-8")) for doc in _load_pydoc())
    folder = Path(sysconfig.get_paths()["stdlib"])
    return sum(p.stat().st_size for p in folder.glob("*.py") if not p.name.startswith("_sysconfigdata"))


def name_position(name: str) -> float:
    """A stable number in ``[0, 1)`` for ``name``: the first 8 bytes of its SHA-256 (UTF-8)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(
    documents: list[Document], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, list[Document]]:
    """``{"train": [...], "validation": [...], "test": [...]}``, each sorted by name.

    A document goes to the split whose interval of ``[0, 1)`` (cut at the cumulative
    ``fractions``) holds :func:`name_position` of its name: deterministic, independent of the
    other documents and of the process. When that leaves a split empty and there are at least
    3 documents, the document of the largest split whose position lies nearest the empty
    split's interval moves there (again deterministic), so every split is non-empty.

    Raises ``ConfigError`` unless ``fractions`` are three numbers > 0 summing to 1, or if two
    documents share a name.

    >>> docs = [Document(f"d{i}", "x") for i in range(20)]
    >>> parts = split_documents(docs)
    >>> [len(parts[k]) for k in ("train", "validation", "test")]
    [14, 3, 3]
    """
    if len(fractions) != 3 or any(not f > 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(
            f"fractions must be three numbers > 0 summing to 1 (train, validation, test); got {fractions}"
        )
    names = [d.name for d in documents]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})[:3]
        raise ConfigError(f"documents must have unique names; repeated: {repeated}")
    cuts = (0.0, fractions[0], fractions[0] + fractions[1], 1.0)
    parts: dict[str, list[Document]] = {key: [] for key in SPLITS}
    for doc in documents:
        position = name_position(doc.name)
        index = 0 if position < cuts[1] else 1 if position < cuts[2] else 2
        parts[SPLITS[index]].append(doc)
    if len(documents) >= 3:
        for index, key in enumerate(SPLITS):
            if not parts[key]:
                _fill(parts, key, (cuts[index] + cuts[index + 1]) / 2)
    return {key: sorted(parts[key], key=lambda d: d.name) for key in SPLITS}


def _fill(parts: dict[str, list[Document]], key: str, centre: float) -> None:
    """Move into the empty split ``key`` the document of the largest split whose position is
    nearest ``centre`` (ties: by name)."""
    donor = max(SPLITS, key=lambda k: (len(parts[k]), -SPLITS.index(k)))
    chosen = min(parts[donor], key=lambda d: (abs(name_position(d.name) - centre), d.name))
    parts[donor].remove(chosen)
    parts[key].append(chosen)
