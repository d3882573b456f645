"""How the engine words a failure in its logs: one line, the error's class and first line."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
