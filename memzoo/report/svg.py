"""A matplotlib figure as inline SVG, with the numbers it draws as a CSV link beside it.

The SVG is written with text as text (``svg.fonttype = "none"``: crisp, selectable, editable in
a vector editor, half the size of glyph paths), without its XML prolog and DOCTYPE (so it sits
inside HTML) and with every element id prefixed by the figure's name, so two figures on one
page never share an id (matplotlib names groups ``figure_1``, ``axes_1``, ... in every file).
The CSV travels as a percent-encoded ``data:`` URI in an ``<a download>`` link: the report
stays one self-contained file, and a click saves ``NAME.csv``.

>>> csv_text([{"layers": "gru", "x": 64, "mean": 0.5}, {"layers": "lstm", "x": 128, "std": 0.1}])
'layers,x,mean,std\\ngru,64,0.5,\\nlstm,128,,0.1\\n'
>>> slug("Accuracy vs seq_len / mqar")
'accuracy-vs-seq_len-mqar'
"""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from memzoo.report.data import esc

# No <metadata> block: the same store gives the same bytes (no date, no version stamp).
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_ID_USE = re.compile(r'(\bid="|url\(#|href="#)([^"()]+)')


def slug(name: str) -> str:
    """``name`` as an id and file name: lower case, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-") or "figure"


def inline_svg(text: str, *, prefix: str, alt: str) -> str:
    """matplotlib's SVG file as an element for HTML: prolog and DOCTYPE gone, every id and
    every reference to one (``url(#…)``, ``href="#…"``) prefixed, ``role="img"`` and
    ``aria-label`` (``alt``, escaped) on the root."""
    start = text.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    body = text[start:].strip()
    ids = set(re.findall(r'\bid="([^"]+)"', body))

    def rename(match: re.Match) -> str:
        name = match.group(2)
        return match.group(1) + (prefix + name if name in ids else name)

    body = _ID_USE.sub(rename, body)
    return body.replace("<svg ", f'<svg role="img" aria-label="{esc(alt)}" ', 1)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return value


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` as CSV: a column per key (in first-seen order), a line per row, blanks for
    keys a row lacks; floats at full precision."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return buf.getvalue()


def csv_link(rows: Sequence[Mapping[str, Any]], filename: str) -> str:
    """``<a download="FILENAME" href="data:text/csv;…">data (CSV)</a>`` holding ``rows``."""
    data = urllib.parse.quote(csv_text(rows), safe=",")
    return (
        f'<a class="csv" download="{esc(filename)}" href="data:text/csv;charset=utf-8,{data}">'
        f"data (CSV, {len(rows)} rows)</a>"
    )
