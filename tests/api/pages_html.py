"""Reading the server-rendered pages in tests: the rows of a page's table, the items of
the home page, a form's CSRF token."""

from __future__ import annotations

import html
import re

TAG = re.compile(r"<[^>]+>")
BODY = re.compile(r"<tbody>(.*?)</tbody>", re.DOTALL)
ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.DOTALL)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
ATTENTION = re.compile(r'<a href="([^"]+)" data-attention="([^"]+)" data-count="(\d+)"', re.DOTALL)


def text(fragment: str) -> str:
    return html.unescape(TAG.sub("", fragment)).strip()


def table(page: str) -> list[list[str]]:
    """The text of every cell of the page's first table body, row by row; a "Nothing
    matches." row is no row."""
    body = BODY.search(page)
    assert body, "the page has no table of rows"
    rows = [[text(c) for c in CELL.findall(row)] for row in ROW.findall(body.group(1))]
    return [r for r in rows if r != ["Nothing matches."]]


def column(page: str, index: int = 0) -> list[str]:
    return [row[index] for row in table(page)]


def attention(page: str) -> dict[str, tuple[int, str]]:
    """The home page's items: key -> (count, link)."""
    return {key: (int(count), html.unescape(href)) for href, key, count in ATTENTION.findall(page)}
