"""Log lines, one format for every process: a JSON object per line on stderr.

Each object carries ``ts``, ``level``, ``process`` (``exporter``, ``worker``, ``api`` or the
one-shot command's name), ``logger`` and ``msg``, plus every field a caller passed with
``extra=`` (a delivery id, an event id) or a filter stamped on the record (the API's request
id). The long-running processes log JSON so that a log pipeline can index them without a
parser per process; one-shot commands default to plain text for the person at the terminal.
Python warnings and exceptions that escape a thread go through the same handler, so no
stray multi-line traceback breaks the one-object-per-line contract.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from ``extra=`` or a filter
# (except uvicorn's ``color_message``, the message again with terminal colour codes).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(
    process: str, log_format: str, level: str, filters: Iterable[logging.Filter] = ()
) -> None:
    """Send every log line (ours, the libraries', uvicorn's) through one handler on stderr."""
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: expected one of {FORMATS}")
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
        threading.excepthook = _log_thread_exception
        sys.excepthook = _log_uncaught
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    for log_filter in filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def add_filter(log_filter: logging.Filter) -> None:
    """Stamp every record the root handlers write (e.g. with the id of the request)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    log.critical("thread %s died", name, exc_info=exc_info)


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, traceback: TracebackType | None
) -> None:
    log.critical("uncaught exception", exc_info=(exc_type, exc, traceback))
