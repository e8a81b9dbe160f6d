"""Who is asking: the dashboard's auth modes, turned into a `User` with a team scope on `flask.g`.

- ``none``: everyone is an anonymous admin; `serve` then binds only to loopback (or says loudly that it
  does not, with `--no-auth`).
- ``basic``: HTTP basic auth. `dashboard.basic_user` (password in AOAI_LENS_DASHBOARD__BASIC_PASSWORD or
  its *_FILE) sees every team; each `[[dashboard.users]]` sees its `teams` (none listed: every team),
  its password read from the variable `password_env` or the file `password_file`.
- ``appservice``: behind Azure App Service / Container Apps authentication ("Easy Auth"), which signs the
  user in and passes `X-MS-CLIENT-PRINCIPAL` (base64 JSON with `claims`) and
  `X-MS-CLIENT-PRINCIPAL-NAME`. These headers are trusted only in this mode: the platform strips them
  from incoming requests, so they can only come from it. Group claims (Entra group object ids) map to
  teams through `dashboard.group_teams`; `dashboard.admin_groups` see everything. A request without
  the header gets 401; a signed-in user in no mapped group gets 403.

`/healthz` needs no auth (the platform's probes call it) and says nothing sensitive.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request

from queries.config import Settings
from queries.scope import Scope

log = logging.getLogger("aoai_lens.auth")

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
PRINCIPAL_NAME_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
OPEN_PATHS = ("/healthz",)
GROUP_CLAIMS = ("groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
# Easy Auth's principal is a few KB even with many group claims (Entra sends at most 200 groups in a
# token, then an overage claim); anything far larger is not from the platform.
MAX_PRINCIPAL_CHARS = 256 * 1024
NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


@dataclass(frozen=True)
class User:
    name: str
    scope: Scope

    @property
    def is_admin(self) -> bool:
        return self.scope.is_everything


ANONYMOUS = User("anonymous", Scope.everything())


class Denied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---- basic -------------------------------------------------------------------------------------------


def _basic_user(settings: Settings, header: str | None) -> User:
    if not header or not header.lower().startswith("basic "):
        raise Denied(401, "sign in")
    try:
        name, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8: all ValueErrors
        raise Denied(401, "malformed basic credentials") from None
    d = settings.dashboard
    candidates: list[tuple[str, str | None, Scope]] = []
    if d.basic_user and d.basic_password is not None:
        candidates.append((d.basic_user, d.basic_password.get_secret_value(), Scope.everything()))
    for u in d.users:
        candidates.append((u.name, u.password(), Scope.of(u.teams) if u.teams else Scope.everything()))
    for cand_name, cand_password, scope in candidates:
        # compare both, always, in constant time: no early exit that tells names from passwords
        same_name = hmac.compare_digest(cand_name.encode(), name.encode())
        same_pw = cand_password is not None and hmac.compare_digest(cand_password.encode(), password.encode())
        if same_name and same_pw:
            return User(cand_name, scope)
    raise Denied(401, "wrong user name or password")


# ---- App Service / Container Apps ------------------------------------------------------------------------


def principal_claims(header: str) -> tuple[list[str], str | None]:
    """(group object ids, display name) from an X-MS-CLIENT-PRINCIPAL value. Anything else, however
    odd (not base64, not JSON, JSON nested thousands deep, claims that are not objects), is a 401."""
    if len(header) > MAX_PRINCIPAL_CHARS:
        raise Denied(401, "malformed client principal")
    try:
        raw = base64.b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(raw)
        claims = data.get("claims") or []
        groups = [str(c.get("val", "")).lower() for c in claims if c.get("typ") in GROUP_CLAIMS]
        name_typ = data.get("name_typ")
        name = next(
            (str(c.get("val")) for c in claims if c.get("typ") in (*NAME_CLAIMS, name_typ) and c.get("val")), None
        )
    except (binascii.Error, ValueError, AttributeError, TypeError, RecursionError):
        raise Denied(401, "malformed client principal") from None
    return groups, name


def _appservice_user(settings: Settings, header: str | None, name_header: str | None) -> User:
    if not header:
        raise Denied(401, "not signed in: this dashboard expects App Service / Container Apps authentication")
    groups, claim_name = principal_claims(header)
    name = name_header or claim_name or "signed-in user"
    d = settings.dashboard
    if any(gid in d.admin_groups for gid in groups):
        return User(name, Scope.everything())
    teams = sorted({t for gid in groups for t in d.group_teams.get(gid, [])})
    if not teams:
        raise Denied(403, "your account is in no group this dashboard maps to a team; ask an admin")
    return User(name, Scope.of(teams))


# ---- failed logins ----------------------------------------------------------------------------------------


class LoginThrottle:
    """At most `limit` failed sign-ins per client address in a sliding `window_s`; past that the client
    gets 429 with Retry-After (seconds until its oldest failure leaves the window) without its
    credentials being checked at all. A successful sign-in clears the client's count. Per process: with
    several gunicorn workers an attacker gets `limit` guesses per worker and window (still a few a
    second instead of thousands)."""

    def __init__(self, limit: int = 10, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures.setdefault(client, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait before trying again, or None when it may try now."""
        with self._lock:
            now = self.clock()
            q = self._recent(client, now)
            if len(q) < self.limit:
                return None
            return max(1, math.ceil(q[0] + self.window_s - now))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # forget the quietest clients rather than grow without bound
                for key in [k for k, v in self._failures.items() if not v][:5_000]:
                    del self._failures[key]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


# ---- the request hook -----------------------------------------------------------------------------------


def authenticate(settings: Settings, headers: Any) -> User:
    mode = settings.dashboard.auth
    if mode == "none":
        return ANONYMOUS
    if mode == "basic":
        return _basic_user(settings, headers.get("Authorization"))
    return _appservice_user(settings, headers.get(PRINCIPAL_HEADER), headers.get(PRINCIPAL_NAME_HEADER))


def current_user() -> User:
    """The signed-in user of this request (anonymous admin outside a request or with no auth mode)."""
    try:
        user = g.get("aoai_user")
    except RuntimeError:  # no app context
        return ANONYMOUS
    return user if isinstance(user, User) else ANONYMOUS


def install(server: Flask, throttle: LoginThrottle | None = None) -> None:
    """Authenticate every request but the open paths; put the user on `flask.g.aoai_user`. Failed basic
    sign-ins are throttled per client address (`LoginThrottle`)."""
    throttle = throttle or LoginThrottle()
    server.config["aoai_lens_login_throttle"] = throttle

    @server.before_request
    def _authenticate() -> Any:
        if request.path in OPEN_PATHS:
            return None
        settings: Settings = current_app.config["aoai_lens_settings"]
        client = request.remote_addr or "?"
        basic = settings.dashboard.auth == "basic"
        wait = throttle.retry_after(client) if basic else None
        if wait is not None:
            log.warning("%s %s refused: too many failed sign-ins from %s", request.method, request.path, client)
            resp = Response("429 too many failed sign-ins; try again later\n", status=429, mimetype="text/plain")
            resp.headers["Retry-After"] = str(wait)
            return resp
        try:
            g.aoai_user = authenticate(settings, request.headers)
        except Denied as e:
            log.info("%s %s refused: %s", request.method, request.path, e.reason)
            if basic and request.headers.get("Authorization"):
                throttle.failed(client)  # a wrong guess; a browser's first request without credentials is not
            resp = Response(f"{e.status} {e.reason}\n", status=e.status, mimetype="text/plain")
            if e.status == 401 and basic:
                resp.headers["WWW-Authenticate"] = 'Basic realm="aoai-lens", charset="UTF-8"'
            return resp
        if basic:
            throttle.succeeded(client)
        return None
