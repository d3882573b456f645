"""``opsdeck secrets``: the key that seals the secrets stored in the database.

``new-key`` prints a fresh ``secrets_key``. ``reseal`` writes every stored TOTP secret and
active webhook signing secret again under the current key: the last step of a key rotation
(the old key moved to ``secrets_previous_keys`` first, and removed from there after).
"""

from __future__ import annotations

import argparse
from typing import Any

from core.application_names import CLI
from core.database import connect
from core.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "secrets", help="the key that seals TOTP and webhook signing secrets at rest"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("new-key", help="print a new key for OPSDECK_SECRETS_KEY")
    actions.add_parser(
        "reseal", help="seal every stored secret under secrets_key (after a key rotation)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core.sealed_secrets import SecretBox, UnreadableSecret, new_key, reseal_all
    from opsdeck.cli.errors import CommandError

    if args.action == "new-key":
        print(new_key())
        return 0
    box = SecretBox.required(settings, "opsdeck secrets reseal")
    url = settings.require("database_url", "opsdeck secrets reseal")
    with connect(url, application_name=CLI) as conn:
        try:
            count = reseal_all(conn, box)
        except UnreadableSecret as exc:
            raise CommandError(f"{exc}; nothing was changed") from None
        conn.commit()
    print(f"resealed {count} secrets under the current key")
    return 0
