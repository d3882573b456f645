"""The confirmed changes of the API key pages (``api_keys.manage``): create a key, revoke
it, rotate it, set its expiry and rate limit. Everyone manages their own keys, super
admins everyone's. A key holds at most its user's role, and a key that makes a key gives
it no more than it holds itself. A new key's secret is shown once, in the answer to the
change, and stored nowhere but as a hash. Rotation revokes the old key in the transaction
that makes the new one: the old secret stops working at once, with no overlap."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.requests import Request

from api.auth.principal import Principal
from api.confirmed_changes import Change, Done, Edit, Proposal, change_routes
from api.manage import key_store
from api.manage.key_store import Limits
from api.problems import Problem, invalid
from api.rbac import PERMISSIONS, Role, permissions_of
from api.routing import Param, RouteSpec, principal_of, runtime_of

MANAGE = "api_keys.manage"
TAGS = ("api-keys",)
NAME_MAX = 100
ID = Param("id", {"type": "integer", "minimum": 1}, "API key id", "path", required=True)
NAME = Param(
    "name",
    {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
    "the key's name",
    required=True,
)
SCOPE = Param(
    "scope",
    {"type": "array", "items": {"type": "string", "enum": sorted(PERMISSIONS)}},
    "a permission the key holds (repeatable or comma-separated), within its user's role",
    required=True,
)
EXPIRES = Param(
    "expires",
    {"type": "string", "format": "date"},
    "the day (UTC) from whose start the key is refused as expired; empty: never",
)
RATE_LIMIT = Param(
    "rate_limit",
    {"type": "integer", "minimum": 1},
    "the key's requests a minute; empty: the API's default",
)
OWNER_LIMIT = 128
OWNER = Param(
    "user",
    {"type": "string", "maxLength": OWNER_LIMIT},
    "whose key (super admins); default: yours",
)


def key_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("id", "an API key id")
    return int(raw)


def _expiry(request: Request) -> datetime | None:
    raw = request.query_params.get("expires", "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise invalid("expires", "a date, YYYY-MM-DD") from None
    today = datetime.now(UTC).date()
    longest = runtime_of(request).api.key_expiry_max_days
    if not today < day <= today + timedelta(days=longest):
        raise invalid("expires", f"a day after today and at most {longest} days ahead")
    return datetime.combine(day, time(0), UTC)


def _rate_limit(request: Request) -> int | None:
    """The key's own rate: up to the API's default for a key's owner, up to
    ``api.key_rate_limit_max`` when a super admin sets it."""
    raw = request.query_params.get("rate_limit", "").strip()
    if not raw:
        return None
    api = runtime_of(request).api
    most = (
        api.key_rate_limit_max
        if key_store.sees_all(principal_of(request))
        else api.requests_per_minute
    )
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise invalid("rate_limit", f"requests a minute, from 1 to {most}")
    return int(raw)


def limits_of(request: Request) -> Limits:
    return Limits(_expiry(request), _rate_limit(request))


def _scopes(request: Request, user: dict[str, Any]) -> list[str]:
    """The scopes asked for: at least one, all held by the user's role and, when a key asks,
    by that key."""
    asked = sorted(
        {
            part
            for value in request.query_params.getlist("scope")
            for part in value.split(",")
            if part
        }
    )
    if not asked:
        raise invalid("scope", "choose at least one permission")
    beyond = [s for s in asked if s not in permissions_of(Role(user["role"]))]
    if beyond:
        raise invalid(
            "scope",
            f"the role {user['role']} of {user['username']} does not hold {', '.join(beyond)}",
        )
    principal = principal_of(request)
    unheld = [s for s in asked if principal.via == "api_key" and not principal.can(s)]
    if unheld:
        raise invalid(
            "scope",
            f"this API key does not hold {', '.join(unheld)}; a key makes no key that holds more",
        )
    return asked


def _name(request: Request) -> str:
    name = request.query_params.get("name", "").strip()
    if not 0 < len(name) <= NAME_MAX or not name.isprintable():
        raise invalid("name", f"1 to {NAME_MAX} printable characters")
    return name


async def _owner(request: Request) -> dict[str, Any]:
    """The user the new key is for: the principal, or ``user`` for a super admin."""
    principal, runtime = principal_of(request), runtime_of(request)
    wanted = request.query_params.get("user", "").strip()
    if not wanted:
        return await key_store.owner(runtime, user_id=_person(principal))
    user = await key_store.owner(runtime, username=wanted)
    if user["id"] != principal.person and not key_store.sees_all(principal):
        raise Problem(403, "you manage only your own API keys")
    return user


def _person(principal: Principal) -> int:
    if principal.person is None:
        raise Problem(403, "only a person's keys exist: sign in as a user")
    return principal.person


def _words(limits: Limits, default_rate: int) -> str:
    expires = (
        f"until {limits.expires_at:%Y-%m-%d} 00:00 UTC" if limits.expires_at else "with no expiry"
    )
    rate = limits.rate_limit or f"the default {default_rate}"
    return f"works {expires}, at most {rate} requests a minute"


async def propose_create(request: Request) -> Proposal:
    user, name = await _owner(request), _name(request)
    scopes, limits = _scopes(request, user), limits_of(request)
    rate = runtime_of(request).api.requests_per_minute
    return Proposal(
        f"Create the API key {name!r} for {user['username']} (role {user['role']}) with the "
        f"scopes {', '.join(scopes)}; it {_words(limits, rate)}. Its secret is shown once, "
        "on the next page, and never again."
    )


async def apply_create(edit: Edit) -> Done:
    user, name = await _owner(edit.request), _name(edit.request)
    scopes, limits = _scopes(edit.request, user), limits_of(edit.request)
    made = await key_store.create(edit.runtime, user, name, scopes, limits, edit.actor)
    result = {
        "key": made.prefix,
        "id": made.id,
        "user": user["username"],
        "name": name,
        "scopes": scopes,
        "expires_at": limits.expires_at.isoformat() if limits.expires_at else None,
        "rate_limit": limits.rate_limit,
    }
    message = f"API key {made.prefix} created for {user['username']}"
    return Done(message, result, f"/api-keys/{made.id}", {"API key": made.token})


async def _shown(request: Request) -> dict[str, Any]:
    """The key of the path, when the principal may see it. A proposal names a revoked key
    as such rather than refusing it: a repeated submission is answered before the change
    would be refused."""
    return await key_store.key(runtime_of(request), principal_of(request), key_id(request))


async def _key(request: Request) -> dict[str, Any]:
    found = await _shown(request)
    if found["revoked_at"] is not None:
        raise Problem(409, f"API key {found['prefix']} is revoked")
    return found


def _revoked(found: dict[str, Any]) -> str:
    return " It is revoked already: this will be refused." if found["revoked_at"] else ""


async def propose_revoke(request: Request) -> Proposal:
    found = await _shown(request)
    return Proposal(
        f"Revoke the API key {found['prefix']} ({found['name']}) of {found['username']}: "
        f"it is refused from now on, for good.{_revoked(found)}"
    )


async def apply_revoke(edit: Edit) -> Done:
    found = await _key(edit.request)
    await key_store.revoke(edit.runtime, found["id"])
    result = {"key": found["prefix"], "user": found["username"]}
    return Done(f"API key {found['prefix']} is revoked", result, f"/api-keys/{found['id']}")


async def propose_rotate(request: Request) -> Proposal:
    found = await _shown(request)
    return Proposal(
        f"Replace the API key {found['prefix']} ({found['name']}) of {found['username']} by a "
        "new one with the same scopes, expiry and rate limit. The old secret stops working "
        f"at once; the new one is shown once, on the next page.{_revoked(found)}"
    )


async def apply_rotate(edit: Edit) -> Done:
    found = await _key(edit.request)
    made = await key_store.rotate(edit.runtime, found["id"], edit.actor)
    result = {"key": found["prefix"], "replaced_by": made.prefix, "id": made.id}
    message = f"API key {found['prefix']} is replaced by {made.prefix}"
    return Done(message, result, f"/api-keys/{made.id}", {"New API key": made.token})


async def propose_limits(request: Request) -> Proposal:
    found, limits = await _shown(request), limits_of(request)
    rate = runtime_of(request).api.requests_per_minute
    words = f"The API key {found['prefix']} of {found['username']} {_words(limits, rate)}."
    return Proposal(words + _revoked(found))


async def apply_limits(edit: Edit) -> Done:
    found, limits = await _key(edit.request), limits_of(edit.request)
    await key_store.set_limits(edit.runtime, found["id"], limits)
    result = {
        "key": found["prefix"],
        "expires_at": limits.expires_at.isoformat() if limits.expires_at else None,
        "rate_limit": limits.rate_limit,
    }
    return Done(f"API key {found['prefix']} has new limits", result, f"/api-keys/{found['id']}")


def _target(request: Request) -> str:
    return str(key_id(request))


CREATE = Change(
    "api-key-create", "Create API key", "api_key", lambda r: "new", propose_create, apply_create
)
REVOKE = Change(
    "api-key-revoke", "Revoke API key", "api_key", _target, propose_revoke, apply_revoke
)
ROTATE = Change(
    "api-key-rotate", "Rotate API key", "api_key", _target, propose_rotate, apply_rotate
)
LIMITS = Change(
    "api-key-limits", "Set API key limits", "api_key", _target, propose_limits, apply_limits
)
KEY_ERRORS = {404: "no such API key (or not yours)", 409: "the key is revoked or expired"}


def routes() -> list[RouteSpec]:
    """Before ``/api-keys/{id}``: "new" is not an id."""
    create_errors = {403: "another user's key", 404: "no such user", 409: "the user is disabled"}
    return [
        *change_routes(
            CREATE,
            "/api-keys/new",
            "api_key_create",
            MANAGE,
            (NAME, SCOPE, EXPIRES, RATE_LIMIT, OWNER),
            TAGS,
            errors=create_errors,
            run_errors=create_errors,
        ),
        *change_routes(
            REVOKE,
            "/api-keys/{id}/revoke",
            "api_key_revoke",
            MANAGE,
            (ID,),
            TAGS,
            errors=KEY_ERRORS,
            run_errors=KEY_ERRORS,
        ),
        *change_routes(
            ROTATE,
            "/api-keys/{id}/rotate",
            "api_key_rotate",
            MANAGE,
            (ID,),
            TAGS,
            errors=KEY_ERRORS,
            run_errors=KEY_ERRORS,
        ),
        *change_routes(
            LIMITS,
            "/api-keys/{id}/limits",
            "api_key_limits",
            MANAGE,
            (ID, EXPIRES, RATE_LIMIT),
            TAGS,
            errors=KEY_ERRORS,
            run_errors=KEY_ERRORS,
        ),
    ]
