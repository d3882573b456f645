"""Email over SMTP (STARTTLS and login when configured): one message per person an
escalation step pages, with the runbook and the one-click action links.

STARTTLS checks the server's certificate and host name against the system's trust, or
``ca_file`` (a private CA): a server whose certificate does not hold is refused before the
login and the message are sent, and the notification fails at once (retrying would meet
the same certificate)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio

from api.incidents.transports.base import Outgoing
from api.incidents.transports.http import TransportError

ACTIONS = (("Acknowledge", "acknowledge"), ("Mute 1h", "mute-1h"))


def _tls(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying TLS context; a CA file that cannot be read stops the start."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use {ca_file} as the SMTP server's CA: {exc}") from exc


class EmailTransport:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        public_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.public_url = public_url.rstrip("/")
        self.username, self.password, self.starttls = username, password, starttls
        self.timeout = timeout
        self.tls = _tls(ca_file)

    def message(self, note: Outgoing) -> EmailMessage:
        incident = note.incident
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = note.recipient
        message["Subject"] = f"[{incident['severity']}] #{incident['id']} {incident['title']}"
        lines = [str(incident.get("summary") or incident["title"]), ""]
        if incident.get("runbook_url"):
            lines.append(f"Runbook: {incident['runbook_url']}")
        target = f"incident={incident['id']}&alertname={incident.get('alertname') or ''}"
        for title, action in ACTIONS:
            lines.append(f"{title}: {self.public_url}/actions/{action}?{target}&source=email")
        message.set_content("\n".join(lines))
        return message

    def _deliver(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=self.tls)
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(message)

    async def send(self, note: Outgoing) -> dict[str, Any]:
        await self.deliver(self.message(note))
        return {"to": note.recipient}

    async def deliver(self, message: EmailMessage) -> None:
        """Send ``message`` from this transport's sender, or raise :class:`TransportError`."""
        if "From" not in message:
            message["From"] = self.sender
        try:
            await anyio.to_thread.run_sync(self._deliver, message)
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise TransportError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"SMTP server {self.host}:{self.port} failed the certificate check: "
                f"{exc.verify_message}",
                permanent=True,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"SMTP failed: {exc}", permanent=False) from exc
