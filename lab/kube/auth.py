"""Bearer-token authentication and the lab's two users: an administrator and a read-only viewer."""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

ADMIN_USER = "system:serviceaccount:lab:admin"
READONLY_USER = "system:serviceaccount:lab:readonly"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class User:
    name: str
    can_write: bool


class TokenAuthenticator:
    def __init__(self, admin_token: str | None = None, readonly_token: str | None = None) -> None:
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.readonly_token = readonly_token or secrets.token_urlsafe(32)

    def authenticate(self, authorization: str | None) -> User | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return User(ADMIN_USER, can_write=True)
        if hmac.compare_digest(token.encode(), self.readonly_token.encode()):
            return User(READONLY_USER, can_write=False)
        return None
