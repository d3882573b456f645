"""The one exception type commands raise for a failure the user should read as one line."""

from __future__ import annotations


class CommandError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
