"""Reading user CSV files into pandas frames with errors a user can act on.

Every problem — a missing file, an undecodable byte, an empty file, a missing column, a value
that is not a number or too large to standardise — becomes a ``MemzooError`` whose message
names the file and, where there is one, the column (and the first offending row, counted from 1
after the header: row 1 is the file's second line). pandas comes with the ``apps`` extra and is
imported only here, when a file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memzoo.errors import MemzooError

# Values are standardised ((x - mean) / std), scored by RMSE and fitted by least squares, all
# in float64 (largest 1.8e308): squares and sums of squares of values up to 1e100 stay finite
# for any length of series, while a value near 1e154 or above overflows when squared.
MAX_MAGNITUDE = 1e100


def require_pandas() -> Any:
    """The pandas module; a ``MemzooError`` naming the extra to install when it is missing."""
    try:
        import pandas
    except ImportError as err:
        raise MemzooError(
            "reading series and interaction files needs pandas: pip install 'memzoo[apps]'"
        ) from err
    return pandas


def read_csv(path: str | Path, *, sep: str = ",", encoding: str = "utf-8", header: bool = True):
    """The file at ``path`` as a DataFrame with every cell read as a string.

    Strings first, numbers later: ``numeric_column`` can then report the exact cell that is
    not a number instead of pandas silently turning a column into ``object`` dtype.

    Args:
        path: a delimited text file.
        sep: the field separator (``","``, ``"\\t"``, ...).
        encoding: the file's text encoding.
        header: whether the first line names the columns; without one, columns are named
            ``"0"``, ``"1"``, ...
    """
    pd = require_pandas()
    path = Path(path)
    if not path.is_file():
        raise MemzooError(f"{str(path)!r}: no such file")
    if path.stat().st_size == 0:
        raise MemzooError(f"{str(path)!r} is empty")
    _check_decodes(path, encoding, header)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            encoding=encoding,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except UnicodeDecodeError as err:
        raise MemzooError(
            f"{str(path)!r} is not valid {encoding} text (byte {err.start}: {err.reason}); "
            f"pass encoding=... to read it"
        ) from None
    except pd.errors.EmptyDataError:
        raise MemzooError(f"{str(path)!r} is empty") from None
    except pd.errors.ParserError as err:
        first_line = str(err).strip().splitlines()[0]
        raise MemzooError(
            f"{str(path)!r} is not a well-formed {sep!r}-separated file: {first_line}"
        ) from None
    frame.columns = [str(name).strip() for name in frame.columns]
    if len(frame) == 0:
        raise MemzooError(f"{str(path)!r} has a header but no rows")
    return frame


def _check_decodes(path: Path, encoding: str, header: bool) -> None:
    """Refuse bytes that are not ``encoding`` text, naming the row (counted as in every other
    message: from 1 after the header) and the byte; pandas alone names a byte of its buffer."""
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
    except LookupError:
        raise MemzooError(f"{str(path)!r}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        where = f"row {line - 1}" if header and line > 1 else ("the header" if header else f"row {line}")
        raise MemzooError(
            f"{str(path)!r} is not valid {encoding} text at {where} (line {line}, byte "
            f"0x{raw[err.start]:02x}: {err.reason}); pass encoding=... to read it"
        ) from None


def require_columns(frame, columns: list[str], source: str) -> None:
    """Raise a ``MemzooError`` naming the first of ``columns`` missing from ``frame``."""
    for column in columns:
        if column not in frame.columns:
            raise MemzooError(
                f"{source}: no column {column!r}; columns found: {', '.join(map(str, frame.columns))}"
            )


def numeric_column(frame, column: str, source: str, *, allow_missing: bool):
    """Column ``column`` of ``frame`` as float64 numpy values.

    Empty cells (and ``NA``/``NaN`` spellings) are missing values: NaN when ``allow_missing``,
    an error otherwise. Any other text that is not a number, an infinite value, or one whose
    magnitude exceeds ``MAX_MAGNITUDE`` is an error naming the row (the first such).
    """
    pd = require_pandas()
    raw = frame[column]
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype(str).str.strip()
        missing = text.str.upper().isin(["", "NA", "NAN", "N/A", "NULL", "NONE"])
        values = pd.to_numeric(text.where(~missing), errors="coerce")
    else:
        values = pd.to_numeric(raw, errors="coerce")
        missing = raw.isna()
    bad = values.isna() & ~missing
    if bool(bad.any()):
        row = int(bad.to_numpy().nonzero()[0][0])
        raise MemzooError(
            f"{source}: column {column!r} has a non-numeric value {raw.iloc[row]!r} at row {row + 1}"
        )
    infinite = ~values.isna() & ~values.abs().lt(float("inf"))
    if bool(infinite.any()):
        row = int(infinite.to_numpy().nonzero()[0][0])
        raise MemzooError(
            f"{source}: column {column!r} has a non-finite value {raw.iloc[row]!r} at row {row + 1}"
        )
    too_large = ~values.isna() & values.abs().gt(MAX_MAGNITUDE)
    if bool(too_large.any()):
        row = int(too_large.to_numpy().nonzero()[0][0])
        raise MemzooError(
            f"{source}: column {column!r} has a value too large to standardise {raw.iloc[row]!r} "
            f"at row {row + 1} (accepted: |value| up to {MAX_MAGNITUDE:g}, where squares and their "
            "sums stay finite in float64); rescale the column"
        )
    if not allow_missing and bool(missing.any()):
        row = int(missing.to_numpy().nonzero()[0][0])
        raise MemzooError(f"{source}: column {column!r} has an empty value at row {row + 1}")
    return values.to_numpy(dtype="float64")


def time_values(frame, column: str, source: str):
    """Column ``column`` as sortable numpy times: numbers when every value is one, else dates.

    A value that is neither (or, in a column of dates, not a date) is an error naming its row.
    """
    pd = require_pandas()
    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce")
    if not bool(numbers.isna().any()):
        infinite = ~numbers.abs().lt(float("inf"))
        if bool(infinite.any()):
            row = int(infinite.to_numpy().nonzero()[0][0])
            raise MemzooError(
                f"{source}: column {column!r} has a non-finite time {raw.iloc[row]!r} at row {row + 1}"
            )
        return numbers.to_numpy(dtype="float64")
    dates = pd.to_datetime(raw.astype(str), errors="coerce", format="mixed")
    if bool(dates.isna().any()):
        neither = (numbers.isna() & dates.isna()).to_numpy()
        row = int((neither if neither.any() else dates.isna().to_numpy()).nonzero()[0][0])
        raise MemzooError(
            f"{source}: column {column!r} has a value that is neither a number nor a date: "
            f"{raw.iloc[row]!r} at row {row + 1}"
        )
    return dates.to_numpy().astype("datetime64[ns]").astype("int64")
