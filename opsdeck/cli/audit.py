"""``opsdeck audit``: verify the hash chain, export the trail, apply retention."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime
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
    actions.add_parser("verify", help="recompute the hash chain; exit 1 if anything was altered")
    export = actions.add_parser("export", help="write the trail as CSV or JSON to stdout")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--since", type=_moment, default=datetime(1970, 1, 1, tzinfo=UTC))
    export.add_argument("--until", type=_moment, default=datetime(9999, 1, 1, tzinfo=UTC))
    actions.add_parser("retention", help="delete entries past the retention period")
    parser.set_defaults(handler=run)


def _export(rows: Any, fmt: str) -> int:
    from api.drilldowns.render import jsonable
    from core.audit import EXPORT_COLUMNS

    count = 0
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow(
                ["" if v is None else json.dumps(v) if isinstance(v, dict) else v for v in row]
            )
            count += 1
        return count
    sys.stdout.write("[")
    for row in rows:
        entry = dict(zip(EXPORT_COLUMNS, row, strict=True))
        sys.stdout.write(("," if count else "") + json.dumps(entry, default=jsonable))
        count += 1
    sys.stdout.write("]\n")
    return count


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core.audit import apply_retention, export_rows, verify

    url = settings.require("database_url", f"opsdeck audit {args.action}")
    with connect(url, application_name=CLI) as conn:
        if args.action == "verify":
            result = verify(conn)
            if not result.ok:
                for problem in result.problems:
                    print(f"tampered: {problem}", file=sys.stderr)
                raise CommandError(f"the audit chain is broken ({len(result.problems)} problem(s))")
            print(f"audit log intact: {result.rows} entries, chain verified")
        elif args.action == "export":
            count = _export(export_rows(conn, args.since, args.until), args.format)
            print(f"exported {count} entries", file=sys.stderr)
        else:
            deleted = apply_retention(conn, settings.api.audit_retention_days, actor())
            print(f"removed {deleted} entries older than {settings.api.audit_retention_days} days")
    return 0
