"""The confirmed changes of the user pages (``users.manage``): add a user, change a role,
disable and enable, reset a password or the second factor, end the sessions. Each is a
:mod:`api.confirmed_changes` change (a confirmation page, a reason, one run per
idempotency key, ``action.user-*`` in the audit log on the user's id; on the new name for
an added user), and each ends the user's sessions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from api.auth import passwords
from api.confirmed_changes import Change, Done, Edit, Input, Proposal, change_routes
from api.manage import user_store
from api.manage.user_store import Update
from api.problems import invalid
from api.queries import user_admin as sql
from api.rbac import ROLES, Role
from api.routing import Param, RouteSpec, runtime_of

MANAGE = "users.manage"
TAGS = ("users",)
USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
ID = Param("id", {"type": "integer", "minimum": 1}, "user id", "path", required=True)
ROLE = Param(
    "role", {"type": "string", "enum": [r.value for r in ROLES]}, "the role to give", required=True
)
USERNAME = Param(
    "username",
    {"type": "string", "pattern": USERNAME_RE.pattern, "maxLength": 128},
    "the new user's name (letters, digits, . _ @ + -)",
    required=True,
)
PASSWORD = Input(
    "password",
    "New password (leave empty to have one made and shown once)",
    max_length=256,
    secret=True,
    required=False,
)
ENROL = "They set up a second factor (TOTP) at their next sign-in."


def user_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("id", "a user id")
    return int(raw)


async def _target(request: Request) -> dict[str, Any]:
    return await user_store.user(runtime_of(request), user_id(request))


def _role(request: Request) -> Role:
    role = request.query_params.get("role", "")
    if role not in {r.value for r in ROLES}:
        raise invalid("role", f"one of {', '.join(r.value for r in ROLES)}")
    return Role(role)


def _username(request: Request) -> str:
    username = request.query_params.get("username", "").strip()
    if not USERNAME_RE.match(username):
        raise invalid("username", "1 to 128 letters, digits or . _ @ + -")
    return username


async def _new_password(given: str) -> tuple[str, dict[str, str]]:
    """(the hash, what to show once): ``given``, or a new password shown once."""
    password = given or passwords.new_password()
    hashed = await user_store.password_hash(password)
    return hashed, {} if given else {"Password": password}


async def propose_add(request: Request) -> Proposal:
    username, role = _username(request), _role(request)
    return Proposal(f"Create the user {username} with the role {role}. {ENROL}", (PASSWORD,))


async def apply_add(edit: Edit) -> Done:
    username, role = _username(edit.request), _role(edit.request)
    hashed, shown = await _new_password(edit.values["password"])
    new_id = await user_store.add(edit.runtime, username, role, hashed)
    result = {"user": username, "id": new_id, "role": role, "password": _how(shown)}
    return Done(f"user {username} created as {role}", result, f"/users/{new_id}", shown)


def _how(shown: dict[str, str]) -> str:
    return "generated" if shown else "set"


async def propose_role(request: Request) -> Proposal:
    user, role = await _target(request), _role(request)
    will = (
        f"Give {user['username']} the role {role} (now {user['role']}). Their sessions end, "
        f"and their API keys keep only what {role} holds."
    )
    if role == Role.SUPER_ADMIN and not user["two_factor"]:
        will += f" {ENROL}"
    return Proposal(will)


async def apply_role(edit: Edit) -> Done:
    user, role = await _target(edit.request), _role(edit.request)
    demotes = f"making them {role}" if role != Role.SUPER_ADMIN else None
    version = await user_store.apply(
        edit.runtime, user, Update(sql.SET_ROLE, {"role": role}, demotes)
    )
    result = {
        "user": user["username"],
        "from": user["role"],
        "to": role,
        "session_version": version,
    }
    return Done(f"{user['username']} is now {role}", result, f"/users/{user['id']}")


async def propose_password(request: Request) -> Proposal:
    user = await _target(request)
    return Proposal(f"Set a new password for {user['username']}; their sessions end.", (PASSWORD,))


async def apply_password(edit: Edit) -> Done:
    user = await _target(edit.request)
    hashed, shown = await _new_password(edit.values["password"])
    update = Update(sql.SET_PASSWORD, {"password_hash": hashed})
    version = await user_store.apply(edit.runtime, user, update)
    result = {"user": user["username"], "password": _how(shown), "session_version": version}
    message = f"the password of {user['username']} is reset"
    return Done(message, result, f"/users/{user['id']}", shown)


def _simple(
    name: str,
    title: str,
    will: str,
    update: Callable[[], Update],
    done: str,
) -> Change:
    """A change that takes nothing but the user: ``will`` and ``done`` are formatted with
    the user's row."""

    async def propose(request: Request) -> Proposal:
        return Proposal(will.format(**await _target(request)))

    async def apply(edit: Edit) -> Done:
        user = await _target(edit.request)
        version = await user_store.apply(edit.runtime, user, update())
        result = {"user": user["username"], "session_version": version}
        return Done(done.format(**user), result, f"/users/{user['id']}")

    return Change(name, title, "user", lambda r: str(user_id(r)), propose, apply)


DISABLE = _simple(
    "user-disable",
    "Disable user",
    "Disable {username}: they cannot sign in, their sessions end and their API keys stop "
    "working until they are enabled again.",
    lambda: Update(sql.SET_DISABLED, {"disabled": True}, "disabling them"),
    "{username} is disabled",
)
ENABLE = _simple(
    "user-enable",
    "Enable user",
    "Enable {username}: they can sign in again, and their API keys work again.",
    lambda: Update(sql.SET_DISABLED, {"disabled": False}),
    "{username} is enabled",
)
RESET_TOTP = _simple(
    "user-totp-reset",
    "Reset second factor",
    "Forget the second factor (TOTP) of {username}: their sessions end, and they set up "
    "a new device at their next sign-in.",
    lambda: Update(sql.CLEAR_TOTP, {}, "resetting their second factor"),
    "the second factor of {username} is reset",
)
END_SESSIONS = _simple(
    "user-sessions-end",
    "End sessions",
    "End every session of {username} on every API process; they sign in again.",
    lambda: Update(sql.END_SESSIONS, {}),
    "every session of {username} has ended",
)
ADD = Change(
    "user-add",
    "Add user",
    "user",
    lambda r: r.query_params.get("username", ""),
    propose_add,
    apply_add,
)
ROLE_CHANGE = Change(
    "user-role", "Change role", "user", lambda r: str(user_id(r)), propose_role, apply_role
)
PASSWORD_RESET = Change(
    "user-password-reset",
    "Reset password",
    "user",
    lambda r: str(user_id(r)),
    propose_password,
    apply_password,
)
NOT_FOUND = {404: "no such user"}
REFUSED = {404: "no such user", 409: "it would leave no super admin who can sign in"}


def _of(
    change: Change, path: str, name: str, *params: Param, run: Mapping[int, str] = NOT_FOUND
) -> list[RouteSpec]:
    return change_routes(change, path, name, MANAGE, params, TAGS, errors=NOT_FOUND, run_errors=run)


def routes() -> list[RouteSpec]:
    """Before ``/users/{id}``: "new" is not an id."""
    return [
        *change_routes(
            ADD,
            "/users/new",
            "user_add",
            MANAGE,
            (USERNAME, ROLE),
            TAGS,
            run_errors={409: "the user exists already"},
        ),
        *_of(ROLE_CHANGE, "/users/{id}/role", "user_role", ID, ROLE, run=REFUSED),
        *_of(DISABLE, "/users/{id}/disable", "user_disable", ID, run=REFUSED),
        *_of(ENABLE, "/users/{id}/enable", "user_enable", ID),
        *_of(PASSWORD_RESET, "/users/{id}/password", "user_password", ID),
        *_of(RESET_TOTP, "/users/{id}/totp", "user_totp", ID, run=REFUSED),
        *_of(END_SESSIONS, "/users/{id}/sessions", "user_sessions", ID),
    ]
