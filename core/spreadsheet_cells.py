"""Text cells that a spreadsheet will not run: CSV opened in Excel, LibreOffice or Google
Sheets treats a cell starting with ``= + - @`` (or a tab or carriage return before one) as
a formula (``=HYPERLINK(...)`` exfiltrates, ``=cmd|...`` ran commands). Every CSV opsdeck
writes, the API's exports and the CLI's audit export alike, passes text through
:func:`defuse`: such a cell gets a leading ``'``, which spreadsheets show as text."""

from __future__ import annotations

FORMULA_START = "=+-@\t\r"


def defuse(value: str) -> str:
    """``value``, with a ``'`` in front when a spreadsheet would read it as a formula."""
    return "'" + value if value[:1] and value[0] in FORMULA_START else value
