"""The one retry rule (core/retry.py): the schedule, jitter bounds, Retry-After as seconds
or an HTTP date, the cap and exhaustion; and a scan of the rooms that fails as soon as a
module other than core/retry.py reads ``Retry-After``, parses an HTTP date or indexes a
retry schedule itself, so the mechanism stays written once."""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.retry import next_delay, parse_retry_after, retry_after_of
from tests.conftest import REPO

SCHEDULE = (5.0, 30.0, 120.0)
NOW = 1_445_412_430.0  # Wed, 21 Oct 2015 07:27:10 GMT


def _delay(attempt: int, **options: Any) -> float | None:
    values: dict[str, Any] = {"jitter": 0.0, "rng": random.Random(1), **options}
    delay: float | None = next_delay(SCHEDULE, attempt, **values)
    return delay


@pytest.mark.parametrize(
    ("attempt", "options", "expected"),
    [
        (1, {}, 5.0),  # the wait after attempt n is schedule[n - 1]
        (2, {}, 30.0),
        (3, {}, 120.0),
        (4, {}, None),  # past the schedule: given up (3 delays, 4 attempts)
        (9, {}, None),
        (4, {"after_schedule": "repeat_last"}, 120.0),
        (40, {"after_schedule": "repeat_last"}, 120.0),
        (1, {"retry_after": 60.0, "max_retry_after": 600.0}, 60.0),  # longer: honoured
        (2, {"retry_after": 10.0, "max_retry_after": 600.0}, 30.0),  # shorter: a floor only
        (1, {"retry_after": 9000.0, "max_retry_after": 600.0}, 600.0),  # capped
        (1, {"retry_after": -5.0, "max_retry_after": 600.0}, 5.0),
        (4, {"retry_after": 60.0, "max_retry_after": 600.0}, None),  # no reprieve past the end
        (2, {"retry_after": None, "max_retry_after": 600.0}, 30.0),
    ],
)
def test_the_schedule_retry_after_the_cap_and_exhaustion(
    attempt: int, options: dict[str, object], expected: float | None
) -> None:
    assert _delay(attempt, **options) == expected


def test_jitter_spreads_each_delay_within_its_bounds() -> None:
    rng = random.Random(7)
    for attempt, base in enumerate(SCHEDULE, start=1):
        delays = [next_delay(SCHEDULE, attempt, jitter=0.2, rng=rng) for _ in range(500)]
        assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
        spread = [d for d in delays if d is not None]
        assert max(spread) - min(spread) > 0.3 * base  # spread out, not one value
    assert next_delay(SCHEDULE, 4, jitter=0.2, rng=rng) is None


def test_the_servers_time_is_not_jittered() -> None:
    rng = random.Random(3)
    waits = {
        next_delay(SCHEDULE, 1, jitter=0.5, rng=rng, retry_after=100.0, max_retry_after=600.0)
        for _ in range(50)
    }
    assert waits == {100.0}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempt": 0}, "start at 1"),
        ({"jitter": 1.5}, "between 0 and 1"),
        ({"jitter": -0.1}, "between 0 and 1"),
        ({"retry_after": 5.0}, "max_retry_after"),
        ({"after_schedule": "forever"}, "give_up or repeat_last"),
        ({"schedule": (5.0, -1.0)}, "negative"),
        ({"schedule": (), "after_schedule": "repeat_last"}, "empty schedule"),
    ],
)
def test_input_that_is_not_understood_is_refused(options: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"schedule": SCHEDULE, "attempt": 1, "jitter": 0.1}
    values.update(options)
    schedule, attempt = values.pop("schedule"), values.pop("attempt")
    with pytest.raises(ValueError, match=message):
        next_delay(schedule, attempt, rng=random.Random(1), **values)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("  120 ", 120.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 50.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 50.0),  # obsolete RFC 850
        ("Wed Oct 21 07:28:00 2015", 50.0),  # obsolete asctime, GMT by definition
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # a date passed: now, never negative
        ("soon", None),
        ("1.5", None),  # delay-seconds are digits only
        ("-5", None),
        ("١٢", None),  # digits, but not ASCII ones
        ("Wed, 21 Oct 2015 25:28:00 GMT", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_as_seconds_or_an_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_without_a_now_reads_the_clock() -> None:
    wait = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert wait is not None
    assert wait > 365 * 86_400


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "30"}, 30.0),
        (503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 50.0),
        (429, {"RETRY-AFTER": ["7"]}, 7.0),  # slack_sdk keeps every value in a list
        (429, {"retry-after": []}, None),
        (429, {"content-type": "text/plain"}, None),
        (500, {"retry-after": "30"}, None),  # only 429 and 503 ask the client to wait
        (301, {"retry-after": "30"}, None),
    ],
)
def test_an_answers_retry_after(
    status: int, headers: dict[str, object], expected: float | None
) -> None:
    assert retry_after_of(status, headers, now=NOW) == expected


# The scan: only core/retry.py reads Retry-After, parses HTTP dates or indexes a schedule.
ROOMS = ("core", "exporters", "gateway", "api", "simulator", "opsdeck")
HOME = Path("core/retry.py")
DATE_PARSERS = frozenset({"parsedate", "parsedate_tz", "parsedate_to_datetime", "mktime_tz"})


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_header(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.strip().lower() == "retry-after"
    )


def _writes_the_header(node: ast.AST, parent: ast.AST | None) -> bool:
    """A server setting the header (a dict literal's key, or ``headers[...] = ...``)."""
    if isinstance(parent, ast.Dict):
        return any(key is node for key in parent.keys)
    return isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store)


def _names_schedule(node: ast.AST, aliases: set[str]) -> bool:
    if isinstance(node, ast.Attribute):
        return "retry_schedule" in node.attr
    return isinstance(node, ast.Name) and ("retry_schedule" in node.id or node.id in aliases)


def _measures_schedule(node: ast.AST, aliases: set[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "len"
        and bool(node.args)
        and _names_schedule(node.args[0], aliases)
    )


def _schedule_aliases(tree: ast.AST) -> set[str]:
    """Names bound to an expression that mentions a ``*retry_schedule*`` setting."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        if any(_names_schedule(inner, set()) for inner in ast.walk(node.value)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            aliases |= {t.id for t in targets if isinstance(t, ast.Name)}
    return aliases


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.name.rpartition(".")[2] if isinstance(node, ast.alias) else None


def _offence(node: ast.AST, parent: ast.AST | None, aliases: set[str]) -> str | None:
    name = _name(node)
    if name in DATE_PARSERS:
        return f"parses an HTTP date ({name})"
    if _is_header(node) and not _writes_the_header(node, parent):
        return "reads the Retry-After header"
    if isinstance(node, ast.Subscript) and _names_schedule(node.value, aliases):
        return "indexes a retry schedule"
    if _measures_schedule(node, aliases):
        return "measures a retry schedule"
    return None


def offences(root: Path, rooms: tuple[str, ...] = ROOMS, home: Path | None = HOME) -> Iterator[str]:
    """``path:line: what`` for every place outside ``home`` that redoes its work."""
    for room in rooms:
        for path in sorted((root / room).rglob("*.py")):
            relative = path.relative_to(root)
            if relative == home:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            parents, aliases = _parents(tree), _schedule_aliases(tree)
            for node in ast.walk(tree):
                found = _offence(node, parents.get(node), aliases)
                if found is not None:
                    yield f"{relative}:{getattr(node, 'lineno', 0)}: {found}"


def test_only_core_retry_reads_retry_after_and_indexes_schedules() -> None:
    assert list(offences(REPO)) == []


def test_the_scan_sees_the_real_mechanism() -> None:
    """core/retry.py scanned like any other module is caught reading the header and
    parsing dates: the scan looks at the right things, so its empty answer means something."""
    found = {item.partition(": ")[2] for item in offences(REPO, ("core",), home=None)}
    assert found >= {"reads the Retry-After header", "parses an HTTP date (parsedate_to_datetime)"}


OFFENDERS = {
    "gateway/a.py": 'import email.utils\nwhen = email.utils.parsedate_to_datetime("x")\n',
    "api/b.py": "from email.utils import parsedate_tz\n",
    "api/c.py": 'def f(r):\n    return float(r.headers.get("Retry-After", "0"))\n',
    "api/d.py": 'def f(h):\n    return [v for k, v in h.items() if k.lower() == "retry-after"]\n',
    "simulator/e.py": 'def f(h):\n    return h["retry-after"]\n',
    "api/f.py": "def f(s, n):\n    return s.retry_schedule_seconds[n - 1]\n",
    "gateway/g.py": (
        "def f(s, n):\n    schedule = s.inbound_retry_schedule_seconds\n"
        "    if n > len(schedule):\n        return None\n    return schedule[n - 1]\n"
    ),
    "opsdeck/h.py": "def f(s):\n    return len(s.retry_schedule_seconds)\n",
}
ALLOWED = {
    "api/ok.py": (
        "from core.retry import next_delay, parse_retry_after\n"
        "def answer(response, wait):\n"
        '    response.headers["Retry-After"] = str(wait)\n'
        '    return {"Retry-After": "5"}\n'
        "def wait(s, n, rng, value):\n"
        "    seconds = parse_retry_after(value)\n"
        "    return next_delay(s.retry_schedule_seconds, n, jitter=s.retry_jitter, rng=rng,\n"
        "                      retry_after=seconds, max_retry_after=60.0)\n"
        '"""Retry-After is honoured."""\n'
    ),
    HOME.as_posix(): "from email.utils import parsedate_to_datetime\n",
}


def test_the_scan_catches_the_mechanism_written_again(tmp_path: Path) -> None:
    for name, text in {**OFFENDERS, **ALLOWED}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = list(offences(tmp_path))
    assert sorted({item.split(":")[0] for item in found}) == sorted(OFFENDERS)
    assert "gateway/g.py:3: measures a retry schedule" in found
    assert "gateway/g.py:5: indexes a retry schedule" in found
    assert "api/d.py:2: reads the Retry-After header" in found
