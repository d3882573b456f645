"""``opsdeck audit``: verify the keyed hash chain (against a signed checkpoint too), write a
checkpoint, export the trail, apply retention.

``verify`` exits 0 when the chain is intact, 1 when a row was altered or removed (each
problem on stderr, prefixed ``tampered:``), and 2 when it cannot judge: no chain key, or a
``--against`` file that is unreadable, malformed or signed with another key."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.application_names import CLI
from core.database import connect
from core.settings import Settings
from opsdeck.cli.admin import actor
from opsdeck.cli.errors import CommandError


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("audit", help="the audit trail")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="recompute the hash chain; exit 1 if anything was altered or removed"
    )
    verify.add_argument(
        "--against",
        type=Path,
        metavar="CHECKPOINT",
        help="a checkpoint file (audit checkpoint --out): the chain must still hold its row",
    )
    checkpoint = actions.add_parser(
        "checkpoint", help="write the chain head, signed with the chain key, to a file"
    )
    checkpoint.add_argument("--out", type=Path, required=True, metavar="FILE")
    export = actions.add_parser("export", help="write the trail as CSV or JSON to stdout")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--since", type=_moment, default=datetime(1970, 1, 1, tzinfo=UTC))
    export.add_argument("--until", type=_moment, default=datetime(9999, 1, 1, tzinfo=UTC))
    actions.add_parser("retention", help="delete entries past the retention period")
    parser.set_defaults(handler=run)


def _csv_cell(value: Any) -> Any:
    """A cell as written to CSV: text an actor, a target or a reason supplied (anybody's
    choosing) cannot start a spreadsheet formula."""
    from core.spreadsheet_cells import defuse

    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value)
    return defuse(value) if isinstance(value, str) else value


def _export(rows: Any, fmt: str) -> int:
    from api.drilldowns.render import jsonable
    from core.audit import EXPORT_COLUMNS

    count = 0
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
            count += 1
        return count
    sys.stdout.write("[")
    for row in rows:
        entry = dict(zip(EXPORT_COLUMNS, row, strict=True))
        sys.stdout.write(("," if count else "") + json.dumps(entry, default=jsonable))
        count += 1
    sys.stdout.write("]\n")
    return count


def _verify(conn: Any, against: Path | None) -> None:
    from core.audit import chain_key, verify
    from core.audit_checkpoints import BadCheckpoint, read, verify_against

    chain_key()  # without it nothing can be judged: a settings error (status 2)
    try:
        checkpoint = read(against) if against is not None else None
    except BadCheckpoint as exc:
        raise CommandError(f"--against: {exc}", status=2) from None
    result = verify(conn) if checkpoint is None else verify_against(conn, checkpoint)
    if not result.ok:
        for problem in result.problems:
            print(f"tampered: {problem}", file=sys.stderr)
        raise CommandError(f"the audit chain is broken ({len(result.problems)} problem(s))")
    held = f"; it holds row {checkpoint.seq} of the checkpoint" if checkpoint else ""
    print(f"audit log intact: {result.rows} entries, chain verified{held}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core.audit import apply_retention, export_rows
    from core.audit_checkpoints import take, write

    url = settings.require("database_url", f"opsdeck audit {args.action}")
    with connect(url, application_name=CLI) as conn:
        if args.action == "verify":
            _verify(conn, args.against)
        elif args.action == "checkpoint":
            point = take(conn)
            write(args.out, point)
            print(f"checkpoint of row {point.seq} written to {args.out}")
        elif args.action == "export":
            count = _export(export_rows(conn, args.since, args.until), args.format)
            print(f"exported {count} entries", file=sys.stderr)
        else:
            deleted = apply_retention(conn, settings.api.audit_retention_days, actor())
            print(f"removed {deleted} entries older than {settings.api.audit_retention_days} days")
    return 0
