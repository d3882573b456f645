"""A local webhook receiver: verifies every Standard Webhooks signature with the
``standardwebhooks`` package and records what arrived.

The demo points an endpoint at it so outbound webhooks land somewhere visible; the tests and
the benchmark use it as the partner's server. One line per request goes to the record file:
``<webhook-id>\\t<unix time received>\\t<1 if the signature verified, else 0>``.

    python -m opsdeck.partner_receiver --port 9480 --secret whsec_... --record received.tsv
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

log = logging.getLogger("opsdeck.receiver")


class Receiver:
    """A pure ASGI app: POST anything → 204 when the signature verifies, 400 when not."""

    def __init__(self, secrets: Sequence[str], record: IO[str] | None, echo: bool) -> None:
        self.verifiers = [Webhook(s) for s in secrets]
        self.record = record
        self.echo = echo
        self.received = 0
        self.verified = 0

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for verifier in self.verifiers:
            try:
                verifier.verify(body, headers, json_parse=False)
            except (WebhookVerificationError, ValueError):
                continue
            return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] == "GET":
            text = f"received {self.received} verified {self.verified}\n".encode()
            await _answer(send, 200, text)
            return
        ok = self.verify(body, headers)
        self.received += 1
        self.verified += ok
        webhook_id = headers.get("webhook-id", "-")
        if self.record is not None:
            self.record.write(f"{webhook_id}\t{time.time():.6f}\t{int(ok)}\n")
        if self.echo:
            log.info("%s %s %s", "verified" if ok else "BAD SIGNATURE", webhook_id, body[:200])
        await _answer(send, 204 if ok else 400, b"")


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", action="append", default=[], help="whsec_... (repeatable)")
    parser.add_argument("--record", type=Path, help="append one line per request here")
    parser.add_argument("--echo", action="store_true", help="log every message")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give at least one --secret")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # Line-buffered: uvicorn re-raises SIGTERM after its shutdown, so nothing may wait in a
    # buffer for a close that never comes.
    record: IO[str] | None = (
        args.record.open("a", encoding="utf-8", buffering=1) if args.record else None
    )
    app: Any = Receiver(args.secret, record, args.echo)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        if record is not None:
            record.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
