"""Unmasking one record: a written reason, an audit entry, and a grant that expires.

The grant lets its actor see one subject's PII (a customer's name, email and phone, one
API request's address and bodies, or one webhook's raw payload and headers) unmasked
wherever it appears, until it expires.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from api.problems import Problem, invalid
from api.queries import access as access_sql
from api.routing import (
    RouteSpec,
    audit_entry,
    json_object,
    media_type_of,
    principal_of,
    runtime_of,
    safe_next,
)
from core.audit import record_in

SUBJECT_TYPES = ("customer", "api_log", "webhook_inbound", "webhook_rejection", "webhook_message")
FORM = "application/x-www-form-urlencoded"


def _text(data: Any, name: str, limit: int) -> str:
    value = data.get(name) if hasattr(data, "get") else None
    if not isinstance(value, str) or not value.strip():
        raise invalid(name, "required")
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise invalid(name, f"printable text of at most {limit} characters")
    return value.strip()


async def grant(request: Request, data: Any) -> dict[str, Any]:
    runtime = runtime_of(request)
    principal = principal_of(request)
    subject_type = _text(data, "subject_type", 40)
    if subject_type not in SUBJECT_TYPES:
        raise invalid("subject_type", f"one of {', '.join(SUBJECT_TYPES)}")
    subject_id = _text(data, "subject_id", 100)
    reason = _text(data, "reason", 500)
    if len(reason) < runtime.api.unmask_reason_min_chars:
        raise invalid(
            "reason", f"at least {runtime.api.unmask_reason_min_chars} characters: say why"
        )
    async with runtime.ops.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            access_sql.INSERT_GRANT,
            {
                "actor": principal.name,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "reason": reason,
                "ttl": runtime.api.pii_unmask_ttl_seconds,
            },
        )
        grant_id, created_at, expires_at = await cursor.fetchone() or (None, None, None)
        details = {"ttl_seconds": runtime.api.pii_unmask_ttl_seconds, "grant_id": grant_id}
        entry = audit_entry(
            request,
            "pii.unmask",
            target_type=subject_type,
            target_id=subject_id,
            reason=reason,
            details=details,
        )
        await record_in(conn, entry)
    return {
        "subject_type": subject_type,
        "subject_id": subject_id,
        "created_at": created_at.isoformat() if created_at else None,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }


async def unmask_form(request: Request) -> Response:
    form = await request.form()
    await grant(request, form)
    next_value = form.get("next")
    return RedirectResponse(
        safe_next(next_value if isinstance(next_value, str) else None), status_code=303
    )


async def unmask_json(request: Request) -> Response:
    if media_type_of(request) != "application/json":
        raise Problem(415, "send the grant as application/json")
    return JSONResponse(await grant(request, await json_object(request)), status_code=201)


GRANT_PROPERTIES: dict[str, Any] = {
    "subject_type": {"type": "string", "enum": list(SUBJECT_TYPES)},
    "subject_id": {"type": "string", "minLength": 1, "maxLength": 100},
    "reason": {"type": "string", "minLength": 10, "maxLength": 500},
}
GRANT_BODY = {
    "type": "object",
    "required": ["subject_type", "subject_id", "reason"],
    "properties": GRANT_PROPERTIES,
}
GRANT_SCHEMA = {
    "type": "object",
    "required": ["subject_type", "subject_id", "created_at", "expires_at"],
    "properties": {
        "subject_type": {"type": "string"},
        "subject_id": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}
FORM_BODY = {
    FORM: {
        **GRANT_BODY,
        "required": ["subject_type", "subject_id", "reason", "csrf_token"],
        "properties": {
            **GRANT_PROPERTIES,
            "next": {"type": "string", "maxLength": 2000},
            "csrf_token": {"type": "string"},
        },
    }
}

ROUTES = (
    RouteSpec(
        "/unmask",
        "unmask",
        unmask_form,
        "pii.unmask",
        "form",
        "Unmask one record (reason required, audited, expires)",
        methods=("POST",),
        body=FORM_BODY,
        tags=("pii",),
    ),
    RouteSpec(
        "/api/v1/unmask",
        "unmask_api",
        unmask_json,
        "pii.unmask",
        "json",
        "Unmask one record (reason required, audited, expires)",
        methods=("POST",),
        body={"application/json": GRANT_BODY},
        schema=GRANT_SCHEMA,
        status=201,
        tags=("pii",),
    ),
)
