"""API keys for automation: ``opsk_<prefix>_<secret>``. Only a SHA-256 of the whole key is
stored (the secret has 256 bits of entropy, so a slow hash adds nothing); the prefix stays
visible to tell keys apart. A key's scopes are permissions its role holds.

Every key belongs to a user and acts as that person: its role may not exceed theirs, it
stops working when they are disabled, and what they lose (a demotion) the key loses too."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from api.rbac import Role, permissions_of

SCHEME = "opsk"
KEY_RE = re.compile(r"^opsk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    token: str  # shown once
    prefix: str
    secret_hash: bytes


def generate() -> NewKey:
    prefix = secrets.token_hex(6)
    token = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(token, prefix, hash_token(token))


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def prefix_of(token: str) -> str | None:
    match = KEY_RE.match(token)
    return match.group(1) if match else None


def matches(token: str, secret_hash: bytes) -> bool:
    return hmac.compare_digest(hash_token(token), bytes(secret_hash))


def check_scopes(role: Role, scopes: list[str]) -> list[str]:
    """The scopes, validated against the role; all of the role's permissions when empty."""
    allowed = permissions_of(role)
    unknown = sorted(set(scopes) - allowed)
    if unknown:
        raise ValueError(f"role {role} does not hold {', '.join(unknown)}")
    return sorted(scopes) if scopes else sorted(allowed)


def check_owner(role: Role, owner_role: Role) -> None:
    """A key's role may not hold anything its owner's role does not."""
    beyond = sorted(permissions_of(role) - permissions_of(owner_role))
    if beyond:
        raise ValueError(
            f"a {role} key would exceed its user's role {owner_role} ({', '.join(beyond)})"
        )


def effective_scopes(scopes: list[str], role: Role, owner_role: Role) -> frozenset[str]:
    """What a key may do now: its scopes, within its role and its owner's present role."""
    return frozenset(scopes) & permissions_of(role) & permissions_of(owner_role)


def principal_name(username: str, prefix: str) -> str:
    """How a key request is named (audit, rate limits): the person, then the key."""
    return f"{username} (api-key:{prefix})"
