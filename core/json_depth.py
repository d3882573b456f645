"""JSON from outside, read with a bound on nesting.

``json.loads`` recurses once per level: a body of ten thousand ``[`` raises
``RecursionError`` (a 500, not a 400), and a body just under the interpreter's limit parses
into a value that every later recursive walk (JSON encoding, masking, jsonb) trips over.
:func:`loads` measures the nesting first, in one linear pass of a regular expression over
the text (strings skipped, so brackets inside them do not count), and refuses anything
deeper than :data:`core.settings.JSON_MAX_DEPTH` before parsing. Every reader of JSON that
a client sent goes through it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.settings import JSON_MAX_DEPTH

# A string (escapes included, so an escaped quote does not end it) or one bracket. A string
# left open runs to the end of the text, so every string match succeeds at once: the scan
# stays linear whatever the quotes and backslashes (a failing match would be retried from
# every later quote).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


class JsonTooDeep(ValueError):
    """The text nests arrays and objects deeper than allowed; ``str()`` says how deep."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def nesting_depth(text: str, limit: int) -> int:
    """The deepest nesting of arrays and objects in ``text``, counted up to ``limit + 1``
    (the scan stops there). Unbalanced brackets are the parser's to report."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        piece = match.group()
        if piece in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif piece in "]}":
            depth -= 1
    return deepest


def loads(raw: str | bytes, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """``json.loads`` that raises :class:`JsonTooDeep` (a ValueError) instead of nesting
    deeper than ``max_depth``; bytes must be UTF-8 (UnicodeDecodeError otherwise)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if nesting_depth(text, max_depth) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(text)
