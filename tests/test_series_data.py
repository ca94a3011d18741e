"""Loaders of real data: time series (CSV, pandas, built in) and user-item interactions.

Well-formed files load exactly; malformed ones raise a MemzooError naming the file and the
column (and the row where there is one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memzoo.data.interactions import load_interactions
from memzoo.data.series import BUILTIN_SEASONS, builtin_series, load_series
from memzoo.errors import ConfigError, MemzooError


def write(tmp_path, text: str, name: str = "data.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ---- time series ---------------------------------------------------------------------------


def test_csv_series_ordered_by_time_with_gaps_interpolated(tmp_path):
    path = write(
        tmp_path, "date,load,temp\n2024-01-03,30,1\n2024-01-01,10,2\n2024-01-02,,3\n2024-01-04,NA,4\n"
    )
    values = load_series(path, column="load", time_column="date")
    # Sorted by date: 10, (gap), 30, (trailing gap dropped); the gap is interpolated.
    assert values.tolist() == [10.0, 20.0, 30.0]
    both = load_series(path, column=["load", "temp"], time_column="date")
    assert both.shape == (3, 2) and both[:, 1].tolist() == [2.0, 3.0, 1.0]


def test_series_from_pandas_and_missing_error_mode(tmp_path):
    assert load_series(pd.Series([3, 1, 2], name="x")).tolist() == [3.0, 1.0, 2.0]
    path = write(tmp_path, "t,value\n1,1\n2,\n3,3\n")
    with pytest.raises(MemzooError, match=r"'value' has an empty value at row 2"):
        load_series(path, missing="error")
    with pytest.raises(ConfigError, match="missing must be one of interpolate, error"):
        load_series(path, missing="drop")


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("value\n1\n2\n", {"column": "sales"}, r"no column 'sales'; columns found: value"),
        ("", {}, r"is empty"),
        ("value\n", {}, r"has a header but no rows"),
        ("value\n1\nabc\n3\n", {}, r"column 'value' has a non-numeric value 'abc' at row 2"),
        ("t,value\n1,1\n1,2\n", {"time_column": "t"}, r"column 't' repeats the time '1' at row 2"),
        ("t,value\n1,1\nsoon,2\n", {"time_column": "t"}, r"neither a number nor a date: 'soon' at row 2"),
        ("value\n5\n", {}, r"at least 2 values; got 1"),
        ("value\nNA\n\n", {}, r"the series has no values"),
    ],
)
def test_malformed_series_files_name_file_and_column(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(MemzooError, match=message) as err:
        load_series(path, **kwargs)
    assert "data.csv" in str(err.value)


def test_bad_encoding_and_missing_file(tmp_path):
    path = write(tmp_path, "valeur\n1\n2\nné\n", encoding="latin-1")
    with pytest.raises(MemzooError, match=r"data.csv' is not valid utf-8 text .*encoding="):
        load_series(path, column="valeur")
    with pytest.raises(MemzooError, match=r"non-numeric value 'né' at row 3"):
        load_series(path, column="valeur", encoding="latin-1")  # decodes; then the value is bad
    with pytest.raises(MemzooError, match=r"nowhere.csv': no such file"):
        load_series(tmp_path / "nowhere.csv")


def test_builtin_series_are_real_and_complete():
    sunspots, co2 = builtin_series("sunspots"), builtin_series("co2")
    assert sunspots.shape == (309,) and sunspots[:3].tolist() == [5.0, 11.0, 16.0]  # 1700-1702
    assert co2.shape == (2284,) and not np.isnan(co2).any()  # 59 missing weeks interpolated
    assert 310 < co2.min() < co2.max() < 380
    assert BUILTIN_SEASONS == {"sunspots": 11, "co2": 52}
    with pytest.raises(ConfigError, match="sunspots, co2"):
        builtin_series("airline")


# ---- interactions --------------------------------------------------------------------------


def test_interactions_grouped_by_user_in_time_order(tmp_path):
    path = write(
        tmp_path,
        "userId,movieId,rating,timestamp\n2,10,4,300\n1,20,5,200\n1,10,3,100\n2,30,1,50\n3,20,2,7\n1,30,4,150\n",
    )
    data = load_interactions(path)
    assert data.users == ["1", "2"]  # user 3 has a single interaction: dropped
    assert data.items == ["10", "20", "30"]
    assert data.sequences == [[0, 2, 1], [2, 0]]
    assert data.num_items == 3 and len(data) == 2


def test_interactions_movielens_100k_layout_and_dates(tmp_path):
    path = write(tmp_path, "7\t5\t3\t881250949\n7\t9\t3\t881250000\n", name="u.data")
    data = load_interactions(path, user_column="0", item_column="1", time_column="3", sep="\t", header=False)
    assert data.sequences == [[1, 0]] and data.items == ["5", "9"]
    dated = write(tmp_path, "u,i,when\na,x,2024-02-01\na,y,2024-01-01\n")
    data = load_interactions(dated, user_column="u", item_column="i", time_column="when")
    assert data.sequences == [[1, 0]]


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("user,item\n1,2\n", {}, r"no column 'userId'; columns found: user, item"),
        ("userId,movieId,timestamp\n1,2,3\n,4,5\n", {}, r"column 'userId' has an empty id at row 2"),
        (
            "userId,movieId,timestamp\n1,2,x\n",
            {},
            r"column 'timestamp' has a value that is neither a number nor a date: 'x' at row 1",
        ),
        (
            "userId,movieId,timestamp\n1,2,3\n2,2,4\n",
            {},
            r"no user has at least 2 interactions \(2 users read\)",
        ),
        ("", {}, r"is empty"),
        ('userId,movieId\n1,"2\n', {"time_column": None}, r"not a well-formed ','-separated file"),
    ],
)
def test_malformed_interaction_files(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(MemzooError, match=message) as err:
        load_interactions(path, **kwargs)
    assert "data.csv" in str(err.value)


def test_interactions_bad_encoding(tmp_path):
    path = write(tmp_path, "userId,movieId,timestamp\nzoë,a,1\nzoë,b,2\n", encoding="utf-16")
    with pytest.raises(MemzooError, match=r"is not valid utf-8 text"):
        load_interactions(path)
    assert load_interactions(path, encoding="utf-16").users == ["zoë"]
