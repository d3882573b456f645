"""CSV for exports, a column at a time (RFC 4180: CRLF lines, minimal quoting).

An export streams a million rows, so the cost per cell is the throughput. Rather than visit
every cell (as the csv module does), a batch is first written naively — text columns as
they are, numbers through ``str``, times reformatted in one pass per column — and then
checked as a whole with a handful of substring counts: no quote, exactly the commas and line
breaks the grid itself puts there, and no cell starting like a spreadsheet formula
(``= + - @``, tab). Only a batch that fails the check is written again the careful way,
cell by cell: quoted where needed, formulas defused with a leading ``'``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from api.drilldowns.render import positions
from api.drilldowns.spec import Field
from core.spreadsheet_cells import FORMULA_START, defuse

NEEDS_QUOTES = re.compile('[",\r\n]')
SEPARATOR = "\x00"  # cannot occur in PostgreSQL text, so it joins a column safely
# A cell starts the text, or follows a comma or a line break. (A carriage return inside a
# cell shows up in the line-break count instead: every line ends in one.)
FORMULA_CHARS = FORMULA_START.replace("\r", "")

Column = Sequence[Any]
Cells = Sequence[str]


def _blanks(column: Column, convert: Callable[[Any], str]) -> list[str]:
    if None in column:
        return ["" if v is None else convert(v) for v in column]
    return list(map(convert, column))


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if NEEDS_QUOTES.search(value) else value


def plain_text(column: Column) -> Cells:
    """Text as it is: from PostgreSQL (and from masking) it is str already."""
    if column and isinstance(column[0], str) and None not in column:
        return column
    return _blanks(column, str)


def careful_text(column: Column) -> Cells:
    return [_quoted(defuse(v)) for v in plain_text(column)]


def _iso(value: Any) -> str:
    return str(value.isoformat())


def time_cells(column: Column) -> Cells:
    """ISO 8601 times. Exports read them as PostgreSQL's text in UTC
    (``2026-11-23 10:00:00.5+00``), turned into ISO form by two replacements over the
    whole column rather than a datetime object per cell."""
    first = next((v for v in column if v is not None), None)
    cells = _blanks(column, str if isinstance(first, str) else _iso)
    joined = SEPARATOR.join(cells) + SEPARATOR
    joined = joined.replace(" ", "T").replace(f"+00{SEPARATOR}", f"+00:00{SEPARATOR}")
    return joined.split(SEPARATOR)[:-1]


# (fast, careful) per field type. Exports arrive as text (listing.as_text): only times are
# reshaped, only text is defused. Masked values are text whatever the column held.
CELLS: dict[str, tuple[Callable[[Column], Cells], Callable[[Column], Cells]]] = {
    "integer": (plain_text, plain_text),
    "number": (plain_text, plain_text),
    "boolean": (plain_text, plain_text),
    "date-time": (time_cells, time_cells),
    "date": (time_cells, time_cells),
    "array": (plain_text, careful_text),
    "string": (plain_text, careful_text),
}


def _lines(cells: Sequence[Cells]) -> str:
    return "\r\n".join(map(",".join, zip(*cells, strict=True))) + "\r\n"


def _clean(text: str, rows: int, columns: int) -> bool:
    """Whether naive CSV came out right: nothing to quote, nothing to defuse. Single
    characters are looked for first (memchr speed); a two-character start is searched only
    when its character occurs at all (times hold + and -, masked emails @)."""
    if '"' in text or text.startswith(tuple(FORMULA_START)):
        return False
    if text.count(",") != rows * (columns - 1) or text.count("\n") != rows:
        return False
    if text.count("\r") != rows:
        return False
    return not any(c in text and (f",{c}" in text or f"\n{c}" in text) for c in FORMULA_CHARS)


class CsvEncoder:
    """The header, then CSV lines for batches given as columns (all the query's columns, in
    its order; the fields pick and order what is written)."""

    def __init__(self, fields: Sequence[Field], names: Sequence[str]) -> None:
        at = positions(fields, names)
        self._pick: Callable[[Sequence[Column]], Sequence[Column]] = (
            operator.itemgetter(*at) if len(at) > 1 else (lambda columns: [columns[at[0]]])
        )
        self._cells = [CELLS["string" if f.pii else f.type] for f in fields]
        self.header = _lines([[f.name] for f in fields]).encode()

    def encode_columns(self, columns: Sequence[Column]) -> bytes:
        chosen = self._pick(columns)
        rows = len(chosen[0])
        text = _lines([fast(c) for (fast, _), c in zip(self._cells, chosen, strict=True)])
        if not _clean(text, rows, len(chosen)):
            text = _lines([careful(c) for (_, careful), c in zip(self._cells, chosen, strict=True)])
        return text.encode()
