"""User-item interactions (who consumed what, when) as per-user item sequences.

The default column names follow MovieLens' ``ratings.csv`` (``userId,movieId,rating,timestamp``);
any other layout works by naming its columns, e.g. MovieLens-100k's headerless, tab-separated
``u.data``: ``load_interactions(path, user_column="0", item_column="1", time_column="3",
sep="\\t", header=False)``.

>>> import pandas as pd
>>> frame = pd.DataFrame({"userId": [7, 7, 9, 7, 9], "movieId": ["b", "a", "a", "c", "b"],
...                       "timestamp": [2, 1, 5, 3, 4]})
>>> data = load_interactions(frame)
>>> data.users, data.items, data.sequences
(['7', '9'], ['a', 'b', 'c'], [[0, 1, 2], [1, 0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memzoo.data._csv_frames import read_csv, require_columns, require_pandas, time_values
from memzoo.errors import ConfigError, MemzooError


@dataclass(frozen=True)
class Interactions:
    """Interactions grouped by user.

    Attributes:
        sequences: per user, the item indices in time order (ties keep file order).
        users: the raw user id of each sequence.
        items: the raw item id of each item index (sorted), so ``items[i]`` names item ``i``.
    """

    sequences: list[list[int]]
    users: list[str]
    items: list[str]

    @property
    def num_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.sequences)


def load_interactions(
    source: str | Path | Any,
    *,
    user_column: str = "userId",
    item_column: str = "movieId",
    time_column: str | None = "timestamp",
    sep: str = ",",
    encoding: str = "utf-8",
    header: bool = True,
    min_history: int = 2,
) -> Interactions:
    """Read interactions from a delimited file or a pandas DataFrame.

    Args:
        source: a CSV/TSV path or a ``DataFrame``.
        user_column, item_column: the columns holding user and item ids (any text).
        time_column: orders each user's items; ``None`` keeps the file's row order. Numbers
            (Unix seconds) or dates.
        sep, encoding, header: how to read the file (``header=False``: columns are "0", "1", ...).
        min_history: users with fewer interactions are dropped (next-item prediction needs at
            least one item to read and one to predict).

    Raises:
        MemzooError: missing file or column, empty file, bad encoding, empty ids, times that
            are neither numbers nor dates, no user with ``min_history`` interactions.
    """
    pd = require_pandas()
    if min_history < 2:
        raise ConfigError(f"min_history must be >= 2; got {min_history}")
    if isinstance(source, pd.DataFrame):
        frame, where = source, "pandas DataFrame"
    elif isinstance(source, (str, Path)):
        frame, where = read_csv(source, sep=sep, encoding=encoding, header=header), repr(str(source))
    else:
        raise ConfigError(f"source must be a file path or a pandas DataFrame; got {type(source).__name__}")
    columns = [user_column, item_column] + ([time_column] if time_column else [])
    require_columns(frame, columns, where)
    users = _id_column(frame, user_column, where)
    items = _id_column(frame, item_column, where)
    order = np.arange(len(frame))
    if time_column:
        order = np.argsort(time_values(frame, time_column, where), kind="stable")
    item_names = sorted(set(items.tolist()), key=_natural_key)
    item_index = {name: i for i, name in enumerate(item_names)}
    by_user: dict[str, list[int]] = {}
    for row in order:
        by_user.setdefault(users[row], []).append(item_index[items[row]])
    kept = sorted((u for u, seq in by_user.items() if len(seq) >= min_history), key=_natural_key)
    if not kept:
        raise MemzooError(
            f"{where}: no user has at least {min_history} interactions ({len(by_user)} users read)"
        )
    return Interactions(sequences=[by_user[u] for u in kept], users=kept, items=item_names)


def _id_column(frame, column: str, where: str) -> np.ndarray:
    values = frame[column].astype(str).str.strip().to_numpy()
    empty = (values == "") | (values == "nan") | (values == "None")
    if empty.any():
        row = int(empty.nonzero()[0][0])
        raise MemzooError(f"{where}: column {column!r} has an empty id at row {row + 1}")
    return values


def _natural_key(name: str) -> tuple:
    """Numeric ids in numeric order ("2" before "10"), then any other text."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)
