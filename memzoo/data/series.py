"""Real-valued time series: from a CSV file, from a pandas Series/DataFrame, or built in.

Shape legend: L series length, F features (columns).

>>> import pandas as pd
>>> load_series(pd.Series([1.0, None, 3.0, 4.0], name="load")).tolist()
[1.0, 2.0, 3.0, 4.0]
>>> builtin_series("sunspots").shape, BUILTIN_SEASONS["sunspots"]
((309,), 11)

Missing values (empty cells, ``NA``) inside the series are filled by linear interpolation and
missing values at either end are dropped (``missing="interpolate"``, the default), or they
are an error (``missing="error"``). Text that is not a number, an infinite value and a value
beyond ±1e100 (``MAX_MAGNITUDE``: squared in the standardisation, it could overflow float64)
are always errors naming the file, the column and the row as the file holds it (from 1 after
the header, whatever ``time_column`` does to the order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memzoo.data._csv_frames import numeric_column, read_csv, require_columns, require_pandas, time_values
from memzoo.errors import ConfigError, MemzooError

MISSING = ("interpolate", "error")
# Built-in series shipped by statsmodels (no download) and the season length that the
# seasonal-naive baseline uses for each: the ~11-year solar cycle, 52 weeks a year.
BUILTIN_SEASONS = {"sunspots": 11, "co2": 52}


def load_series(
    source: str | Path | Any,
    column: str | list[str] = "value",
    time_column: str | None = None,
    *,
    sep: str = ",",
    encoding: str = "utf-8",
    missing: str = "interpolate",
) -> np.ndarray:
    """A series as float64 values: ``[L]`` for one column, ``[L, F]`` for a list of columns.

    Args:
        source: a CSV path, a pandas ``Series`` (``column`` is then ignored) or a ``DataFrame``.
        column: the value column, or a list of columns (the first is the one forecast).
        time_column: when given, rows are ordered by this column (dates or numbers); repeated
            or unparsable times are errors. Without it the file's row order is time order.
        sep, encoding: how to read the file.
        missing: ``"interpolate"`` or ``"error"`` (see the module docstring).

    Raises:
        MemzooError: missing file or column, empty file, bad encoding, non-numeric, infinite
            or too large value, repeated time stamps, fewer than two values.
    """
    if missing not in MISSING:
        raise ConfigError(f"missing must be one of {', '.join(MISSING)}; got {missing!r}")
    pd = require_pandas()
    columns = [column] if isinstance(column, str) else list(column)
    if not columns:
        raise ConfigError("column must name at least one column")
    if isinstance(source, pd.Series):
        name = source.name if source.name is not None else "value"
        frame, columns, where = source.to_frame(name=name), [name], f"pandas Series {name!r}"
    elif isinstance(source, pd.DataFrame):
        frame, where = source, "pandas DataFrame"
    elif isinstance(source, (str, Path)):
        frame, where = read_csv(source, sep=sep, encoding=encoding), repr(str(source))
    else:
        raise ConfigError(
            f"source must be a CSV path, a pandas Series or a DataFrame; got {type(source).__name__}"
        )
    require_columns(frame, columns + ([time_column] if time_column else []), where)
    order = _time_order(frame, time_column, where) if time_column else None
    values = np.stack(
        [numeric_column(frame, name, where, allow_missing=missing == "interpolate") for name in columns],
        axis=1,
    )  # [L, F], in file order: an error names the row as the file holds it
    if order is not None:
        values = values[order]
    values = _fill_gaps(values, where)
    if len(values) < 2:
        raise MemzooError(f"{where}: a series needs at least 2 values; got {len(values)}")
    return values[:, 0] if isinstance(column, str) or isinstance(source, pd.Series) else values


def builtin_series(name: str) -> np.ndarray:
    """A real series shipped with statsmodels, as float64 ``[L]``.

    - ``"sunspots"``: yearly mean sunspot number, 1700-2008 (309 values);
    - ``"co2"``: weekly atmospheric CO2 at Mauna Loa in ppm, 1958-2001 (2284 weeks; the 59
      missing weeks interpolated linearly).
    """
    if name not in BUILTIN_SEASONS:
        raise ConfigError(f"built-in series must be one of {', '.join(BUILTIN_SEASONS)}; got {name!r}")
    try:
        from statsmodels import datasets
    except ImportError as err:
        raise MemzooError(
            f"the built-in {name!r} series comes with statsmodels: pip install 'memzoo[apps]'"
        ) from err
    if name == "sunspots":
        frame = datasets.sunspots.load_pandas().data
        return load_series(frame, "SUNACTIVITY", time_column="YEAR")
    frame = datasets.co2.load_pandas().data
    return load_series(frame["co2"])


def _time_order(frame, time_column: str, where: str) -> np.ndarray:
    """Row indices ``[L]`` that sort ``frame`` by ``time_column`` (stable); repeated times are
    an error naming the first repeat's row."""
    times = time_values(frame, time_column, where)
    _, first_seen, counts = np.unique(times, return_index=True, return_counts=True)
    if (counts > 1).any():
        later = np.setdiff1d(np.arange(len(times)), first_seen)[0]  # first repeat, in file order
        raise MemzooError(
            f"{where}: column {time_column!r} repeats the time {frame[time_column].iloc[later]!r} "
            f"at row {later + 1}"
        )
    return np.argsort(times, kind="stable")


def _fill_gaps(values: np.ndarray, where: str) -> np.ndarray:
    """Interpolate interior NaNs linearly per column; drop rows with NaNs at either end."""
    present = ~np.isnan(values).any(axis=1)  # [L]
    if not present.any():
        raise MemzooError(f"{where}: the series has no values")
    first, last = np.flatnonzero(present)[[0, -1]]
    values = values[first : last + 1].copy()
    index = np.arange(len(values))
    for f in range(values.shape[1]):
        gaps = np.isnan(values[:, f])
        if gaps.any():
            values[gaps, f] = np.interp(index[gaps], index[~gaps], values[~gaps, f])
    return values
