"""The review server's doors: who may read, who may write, how long a login lasts.

A Datasette plugin of its own (entry point `intercept_doors`; intercept.review registers it
too when not installed). It acts only in a Datasette made by `intercept.review.make_datasette`
(the plugin configuration's `doors` entry); any other Datasette is left alone.

- **Reading.** With reviewer accounts every request needs a live login: pages, JSON and CSV,
  SQL, audio, bundles, the desk's pages and any route a plugin adds later. The only doors open
  to anonymous visitors are the login page and static CSS/JavaScript. An anonymous browser is
  sent to the login page (302), anything else gets 401. `public_read` opens reading to anyone
  (a deliberate public review); writing still needs a login. Datasette's own read permissions
  (view-instance, view-table, execute-sql...) are refused to anonymous actors too, so
  Datasette's own checks agree with the door. Without accounts reading is open and nobody
  writes (`intercept.review.serve` then listens on a loopback address only).
- **Writing.** Every route that writes is wrapped in `write_route`: POST only, refused on a
  read-only store, the actor must be a logged-in reviewer (the route's permission), and the
  request must carry the CSRF token of its `ds_csrftoken` cookie, in the form field
  `csrftoken` or the `x-csrftoken` header, whatever else it sends. The server takes no
  credentials in headers at all: `Authorization` is removed from every request before
  Datasette sees it, so neither asgi-csrf's "Bearer skips the check" rule nor
  datasette-auth-passwords' HTTP Basic logins (which bypass sessions and throttling) apply.
- **Sessions.** A login opens a session: a random id kept in this process's memory with its
  expiry (`session_hours`, default 12). The `ds_actor` cookie carries the id, signed; every
  request looks the id up, so an expired or logged-out session is refused at once, whatever
  the cookie says. Logout deletes the session. A restart ends every session (reviewers log in
  again): sessions are not written to the store, which is evidence, and serving several
  processes would need a shared table. Cookies are HttpOnly and SameSite=Strict, and Secure
  when the request came over TLS or the server was told it sits behind TLS (`https`).
- **Login throttling.** Failed logins are counted per account and per client address; after
  `FREE_FAILURES` of either, each further failure locks that account or address out for
  `BASE_DELAY_S` doubling up to `MAX_DELAY_S`. A locked login is answered 429 with
  Retry-After at once, without checking the password: nothing sleeps, so nobody else waits.
  Password hashes are checked in a worker thread (PBKDF2 takes about 0.3 s).
- **Heavy requests** (evidence bundles) run one at a time per reviewer (`Doors.claim`),
  with a cap on lines per request (`bundle_max_lines`).

Account hashes are kept on the Datasette instance (`Doors.accounts`), never in its metadata,
which `/-/metadata.json` would show.
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import math
import re
import secrets
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional
from urllib.parse import parse_qsl, quote

from datasette import hookimpl
from datasette.utils import baseconv
from datasette.utils.asgi import Response
from itsdangerous import BadSignature

from .site import WRITE_VERDICT, config

SESSION_COOKIE = "ds_actor"  # Datasette's own name: its templates offer "Log out" when it is set
CSRF_COOKIE = "ds_csrftoken"  # asgi-csrf's cookie as Datasette names it
CSRF_FIELD, CSRF_HEADER = "csrftoken", "x-csrftoken"
# Cookies whose Set-Cookie the door hardens (HttpOnly, SameSite=Strict, Secure over TLS).
HARDENED_COOKIES = frozenset({SESSION_COOKIE, CSRF_COOKIE, "ds_messages"})
# What an anonymous visitor may fetch when a login is required (paths after base_url).
ANONYMOUS_PATHS = re.compile(r"^/(?:-/login|-/static/[^?]*|-/intercept/static/[A-Za-z0-9_.-]+|favicon\.ico)$")
# Datasette's read permissions, refused to anonymous actors when a login is required.
READ_ACTIONS = frozenset({"view-instance", "view-database", "view-database-download", "view-table",
                          "view-query", "execute-sql"})
DEFAULT_SESSION_HOURS = 12.0
DEFAULT_BUNDLE_MAX_LINES = 100
FREE_FAILURES = 3  # failed logins per account or address before each further one locks it out
BASE_DELAY_S = 1.0  # the first lockout; each further failure doubles it
MAX_DELAY_S = 15 * 60.0
MAX_THROTTLE_KEYS = 10_000  # accounts and addresses remembered; the stalest go first
MAX_FORM_BYTES = 1 << 20  # a write's form body; verdict notes are at most 4000 characters
DOORS_ATTRIBUTE = "_intercept_doors"
TEMPLATES = Path(__file__).parent / "templates"


# ---------------------------------------------------------------- state


class Sessions:
    """Live logins: session id -> (reviewer, expiry). In memory: a restart ends them all."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float]):
        self.lifetime_s = float(lifetime_s)
        self._clock = clock
        self._live: dict[str, tuple[str, float]] = {}

    def open(self, reviewer: str) -> tuple[str, float]:
        """A new session for `reviewer`: (its id, its expiry on the clock)."""
        now = self._clock()
        # Forget expired sessions now and then, so the table holds live ones only.
        self._live = {sid: entry for sid, entry in self._live.items() if entry[1] > now}
        sid = secrets.token_urlsafe(32)
        expires = now + self.lifetime_s
        self._live[sid] = (reviewer, expires)
        return sid, expires

    def reviewer(self, sid: str) -> Optional[str]:
        """Whose session `sid` is, or None when it is unknown, logged out or expired."""
        entry = self._live.get(sid)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            del self._live[sid]
            return None
        return entry[0]

    def close(self, sid: Optional[str]) -> None:
        self._live.pop(sid or "", None)


class LoginThrottle:
    """Failed logins per key (an account, an address). After `free` failures each further one
    locks the key for `base_s` * 2**(n - free - 1), at most `max_s`; a success clears the key.
    A key is forgotten `max_s` after its lockout ends."""

    def __init__(self, clock: Callable[[], float], free: int = FREE_FAILURES, base_s: float = BASE_DELAY_S,
                 max_s: float = MAX_DELAY_S, max_keys: int = MAX_THROTTLE_KEYS):
        self._clock, self.free, self.base_s, self.max_s, self.max_keys = clock, free, base_s, max_s, max_keys
        self._failures: dict[tuple, list[float]] = {}  # key -> [failures, locked until]

    def _entry(self, key: tuple, now: float) -> Optional[list[float]]:
        entry = self._failures.get(key)
        if entry is not None and now >= entry[1] + self.max_s:
            del self._failures[key]
            return None
        return entry

    def wait_s(self, keys: Iterable[tuple]) -> float:
        """Seconds until a login may be tried for all of `keys`; 0 when it may now."""
        now = self._clock()
        entries = [self._entry(key, now) for key in keys]
        return max([entry[1] - now for entry in entries if entry is not None] + [0.0])

    def failed(self, keys: Iterable[tuple]) -> None:
        now = self._clock()
        for key in keys:
            entry = self._entry(key, now) or [0, now]
            entry[0] += 1
            if entry[0] > self.free:
                entry[1] = now + min(self.max_s, self.base_s * 2 ** (entry[0] - self.free - 1))
            self._failures.pop(key, None)
            self._failures[key] = entry  # last failed last: the stalest keys come first
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, keys: Iterable[tuple]) -> None:
        for key in keys:
            self._failures.pop(key, None)


class Claim:
    """One heavy request in progress; leaving the `with` block frees it."""

    def __init__(self, busy: set, key: tuple):
        self._busy, self._key = busy, key

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._busy.discard(self._key)


class Doors:
    """The doors' state in one Datasette: accounts, sessions, login throttle, busy requests.
    `clock` (wall-clock seconds) may be replaced, e.g. by a test, and every part follows it."""

    def __init__(self, config: Mapping):
        self.login_required = bool(config.get("login")) and not config.get("public_read")
        self.public_read = bool(config.get("public_read"))
        self.https = bool(config.get("https"))
        self.bundle_max_lines = int(config.get("bundle_max_lines") or DEFAULT_BUNDLE_MAX_LINES)
        self.accounts: dict[str, str] = {}  # reviewer -> password hash, set by make_datasette
        self.clock: Callable[[], float] = time.time
        hours = float(config.get("session_hours") or DEFAULT_SESSION_HOURS)
        self.sessions = Sessions(hours * 3600.0, lambda: self.clock())
        self.throttle = LoginThrottle(lambda: self.clock())
        self._busy: set = set()

    def claim(self, what: str, requester: str) -> Optional[Claim]:
        """A Claim on `what` for `requester`, or None while they already have one running."""
        key = (what, requester)
        if key in self._busy:
            return None
        self._busy.add(key)
        return Claim(self._busy, key)


def _door_config(datasette) -> Optional[Mapping]:
    return config(datasette).get("doors")


def doors_of(datasette) -> Doors:
    """The Datasette's Doors (made on first use, from the plugin configuration's `doors`)."""
    doors = getattr(datasette, DOORS_ATTRIBUTE, None)
    if doors is None:
        doors = Doors(_door_config(datasette) or {})
        setattr(datasette, DOORS_ATTRIBUTE, doors)
    return doors


def requester(request) -> str:
    """Who is asking: the reviewer's name, else the client's address."""
    actor = request.actor
    if actor and actor.get("id"):
        return "reviewer " + str(actor["id"])
    client = request.scope.get("client") or ("unknown", 0)
    return "address " + str(client[0])


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- writes


async def read_form(request) -> dict:
    """The request's urlencoded form, read once and replayed, so the route reads it again as
    usual (Datasette's Request reads the body from the ASGI channel, which gives it once)."""
    form = getattr(request, "_intercept_form", None)
    if form is not None:
        return form
    body = b""
    more = True
    while more:
        message = await request.receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_FORM_BYTES:
            raise ValueError(f"the form is larger than {MAX_FORM_BYTES} bytes")

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    request.receive = replay
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
    form = (dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            if content_type == "application/x-www-form-urlencoded" else {})
    request._intercept_form = form
    return form


async def csrf_ok(datasette, request) -> bool:
    """Whether the request carries the token of its own, validly signed, ds_csrftoken cookie
    (form field or header). Nothing else a request sends can stand in for it."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    try:
        datasette.unsign(cookie, "csrftoken")  # asgi-csrf signs the cookie with Datasette's secret
    except BadSignature:
        return False
    sent = request.headers.get(CSRF_HEADER) or (await read_form(request)).get(CSRF_FIELD, "")
    return bool(sent) and secrets.compare_digest(sent.encode(), cookie.encode())


def _text(message: str, status: int, headers: Optional[dict] = None) -> Response:
    return Response.text(message + "\n", status=status, headers=headers or {})


def write_route(handler=None, *, permission: Optional[str] = None,
                refusal: str = "only logged-in reviewers may write here: log in at /-/login"):
    """Decorator for every route that writes (verdicts, voices, corrections...):

        @write_route
        async def record_verdict(request, datasette): ...

    POST only (405); a read-only store refuses (403); the actor must hold `permission`
    (default: the verdict permission, i.e. a logged-in reviewer of this review; 403 `refusal`);
    the request must carry its CSRF token (403), whatever other headers it sends. The form is
    read here and replayed, so the handler reads it with `request.post_vars()` as before."""
    if handler is None:
        return functools.partial(write_route, permission=permission, refusal=refusal)

    @functools.wraps(handler)
    async def checked(request, datasette):
        if request.method != "POST":
            return _text("POST here; see docs/review.md", 405)
        if config(datasette).get("read_only"):
            return _text("the store is read-only here: nothing can be recorded", 403)
        if not await datasette.permission_allowed(request.actor, permission or WRITE_VERDICT, default=False):
            return _text(refusal, 403)
        try:
            if not await csrf_ok(datasette, request):
                return _text("CSRF token missing or wrong: reload the page and try again", 403)
        except ValueError as error:
            return _text(str(error), 413)
        return await handler(request=request, datasette=datasette)

    return checked


# ---------------------------------------------------------------- the door itself


def _cookie_values(headers: list) -> dict:
    found = {}
    for key, value in headers:
        if key.lower() == b"cookie":
            parsed = SimpleCookie()
            try:
                parsed.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header carries no session
                continue
            found.update({name: morsel.value for name, morsel in parsed.items()})
    return found


def _one_cookie_header(headers: list, session: Optional[str]) -> list:
    """`headers` with every Cookie header merged into one, every ds_actor cookie taken out
    and, when `session` (a live session's signed cookie) is given, that one put back. So
    Datasette, whatever way it parses cookies, sees the live session or none."""
    segments, others = [], []
    for key, value in headers:
        if key.lower() == b"cookie":
            segments += [part.strip() for part in value.decode("latin-1").split(";")
                         if part.strip() and part.split("=", 1)[0].strip() != SESSION_COOKIE]
        else:
            others.append((key, value))
    if session is not None:
        segments.append(f"{SESSION_COOKIE}={session}")
    return others + ([(b"cookie", "; ".join(segments).encode("latin-1"))] if segments else [])


def _harden(set_cookie: bytes, secure: bool) -> bytes:
    """A Set-Cookie for one of HARDENED_COOKIES, made HttpOnly and SameSite=Strict (and
    Secure over TLS), whatever attributes it came with."""
    text = set_cookie.decode("latin-1")
    if text.split("=", 1)[0].strip() not in HARDENED_COOKIES:
        return set_cookie
    parts = [part.strip() for part in text.split(";") if part.strip()]
    kept = [parts[0]] + [part for part in parts[1:]
                         if part.split("=", 1)[0].strip().lower() not in ("samesite", "httponly", "secure")]
    kept += ["HttpOnly", "SameSite=Strict"] + (["Secure"] if secure else [])
    return "; ".join(kept).encode("latin-1")


def _route_path(datasette, scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1").partition("?")[0] if raw else scope.get("path", "/")
    base = datasette.setting("base_url") or "/"
    if base != "/" and path.startswith(base):
        path = "/" + path[len(base):]
    return path


def live_reviewer(datasette, doors: Doors, signed: str) -> Optional[tuple[str, str]]:
    """(reviewer, session id) of a ds_actor cookie whose session is live, else None."""
    try:
        decoded = datasette.unsign(signed, "actor")
    except BadSignature:
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("a"), dict):
        return None
    sid = decoded.get("s")
    reviewer = doors.sessions.reviewer(sid) if isinstance(sid, str) else None
    if reviewer is None or reviewer != decoded["a"].get("id") or reviewer not in doors.accounts:
        return None
    return reviewer, sid


def _anonymous_refused(datasette, scope, path: str) -> Response:
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    if scope.get("method") in ("GET", "HEAD") and b"text/html" in accept:
        query = scope.get("query_string") or b""
        wanted = path + ("?" + query.decode("latin-1") if query else "")
        return Response.redirect(datasette.urls.path("/-/login") + "?next=" + quote(wanted, safe="/"))
    return _text("log in first: this review needs a login to read anything (/-/login)", 401)


@hookimpl(trylast=True)  # called last, so its wrapper is the outermost: nothing runs before the door
def asgi_wrapper(datasette):
    def wrap(app):
        async def door(scope, receive, send):
            config = _door_config(datasette) if scope.get("type") == "http" else None
            if config is None:
                return await app(scope, receive, send)
            doors = doors_of(datasette)
            # No credentials in headers: logins go through /-/login, its throttle and a session.
            headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() != b"authorization"]
            signed = _cookie_values(headers).get(SESSION_COOKIE)
            session = live_reviewer(datasette, doors, signed) if signed else None
            stale = signed is not None and session is None
            headers = _one_cookie_header(headers, signed if session else None)
            secure = doors.https or scope.get("scheme") == "https"
            scope = dict(scope, headers=headers, intercept_session=session[1] if session else None)

            async def hardened_send(message):
                if message["type"] == "http.response.start":
                    out = [(k, _harden(v, secure) if k.lower() == b"set-cookie" else v)
                           for k, v in message.get("headers") or []]
                    sets_session = any(k.lower() == b"set-cookie" and v.startswith(SESSION_COOKIE.encode() + b"=")
                                       for k, v in out)
                    if stale and not sets_session:
                        # Tell the browser to drop a cookie that no longer opens anything.
                        out.append((b"set-cookie", _harden(f"{SESSION_COOKIE}=; Max-Age=0; Path=/".encode(), secure)))
                    message = dict(message, headers=out)
                await send(message)

            path = _route_path(datasette, scope)
            if session is None and doors.login_required and not ANONYMOUS_PATHS.match(path):
                return await _anonymous_refused(datasette, scope, path).asgi_send(hardened_send)
            return await app(scope, receive, hardened_send)

        return door

    return wrap


@hookimpl(trylast=True)  # Datasette keeps the last answer that is not None: this one
def permission_allowed(datasette, actor, action):
    if action not in READ_ACTIONS or _door_config(datasette) is None:
        return None
    doors = doors_of(datasette)
    if doors.login_required and not (actor and actor.get("id") in doors.accounts):
        return False
    return None


# ---------------------------------------------------------------- login and logout


def _local_path(candidate: Optional[str]) -> Optional[str]:
    """`candidate` if it is a path on this site (so a redirect cannot leave it), else None."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return None


def _verify(accounts: Mapping[str, str], name: str, password: str) -> bool:
    from datasette_auth_passwords.utils import verify_password

    if name not in accounts:
        # An unknown name costs as much as a known one (a check against some account's hash,
        # whose answer is thrown away), so the time taken does not tell names apart.
        for some_hash in list(accounts.values())[:1]:
            verify_password(password, some_hash)
        return False
    return verify_password(password, accounts[name])


async def _login_form(datasette, request, error: Optional[str], next_path: str, status: int = 200,
                      headers: Optional[dict] = None) -> Response:
    cache = datasette.__dict__.setdefault("_intercept_templates", {})
    if "intercept_login.html" not in cache:
        cache["intercept_login.html"] = datasette.jinja_env.from_string(
            (TEMPLATES / "intercept_login.html").read_text(encoding="utf-8"))
    doors = doors_of(datasette)
    body = await datasette.render_template(cache["intercept_login.html"], {
        "error": error, "next": next_path, "has_accounts": bool(doors.accounts),
    }, request=request)
    return Response.html(body, status=status, headers={"x-frame-options": "DENY", **(headers or {})})


async def login_page(request, datasette):
    """GET: the login form. POST: check the password (throttled) and open a session."""
    doors = doors_of(datasette)
    if request.method != "POST":
        return await _login_form(datasette, request, None, _local_path(request.args.get("next")) or "/")
    try:
        form = await read_form(request)
    except ValueError as error:
        return _text(str(error), 413)
    next_path = _local_path(form.get("next")) or "/"
    if not await csrf_ok(datasette, request):
        return await _login_form(datasette, request, "The form had expired: please log in again.", next_path, 403)
    name, password = form.get("username", ""), form.get("password", "")
    client = (request.scope.get("client") or ("unknown", 0))[0]
    keys = [("account", name), ("address", str(client))]
    wait = doors.throttle.wait_s(keys)
    if wait > 0:
        seconds = math.ceil(wait)
        return await _login_form(datasette, request, f"Too many failed logins for this account or from this "
                                 f"address: try again in {seconds} s.", next_path, 429,
                                 {"retry-after": str(seconds)})
    # Counted before the check, so that guesses sent side by side all count.
    doors.throttle.failed(keys)
    if not await asyncio.to_thread(_verify, doors.accounts, name, password):
        return await _login_form(datasette, request, "Invalid username or password", next_path)
    doors.throttle.succeeded(keys)
    sid, expires = doors.sessions.open(name)
    response = Response.redirect(datasette.urls.path(next_path) if next_path != "/" else datasette.urls.instance())
    signed = datasette.sign({"a": {"id": name}, "s": sid, "e": baseconv.base62.encode(int(expires))}, "actor")
    response.set_cookie(SESSION_COOKIE, signed, max_age=int(doors.sessions.lifetime_s), httponly=True,
                        samesite="strict", secure=doors.https or request.scheme == "https")
    return response


async def logout_page(request, datasette):
    """GET: the logout button. POST (with its CSRF token): end the session on the server."""
    if request.method != "POST":
        if not request.actor:
            return Response.redirect(datasette.urls.path("/-/login"))
        return Response.html(await datasette.render_template(["logout.html"], {"actor": request.actor},
                                                             request=request))
    try:
        if not await csrf_ok(datasette, request):
            return _text("CSRF token missing or wrong: reload the page and try again", 403)
    except ValueError as error:
        return _text(str(error), 413)
    doors_of(datasette).sessions.close(request.scope.get("intercept_session"))
    response = Response.redirect(datasette.urls.path("/-/login"))
    response.set_cookie(SESSION_COOKIE, "", expires=0, max_age=0, httponly=True, samesite="strict")
    datasette.add_message(request, "You are now logged out", datasette.WARNING)
    return response


@hookimpl(tryfirst=True)  # before datasette-auth-passwords' /-/login and Datasette's /-/logout
def register_routes(datasette):
    if _door_config(datasette) is None:
        return []
    return [(r"^/-/login$", login_page), (r"^/-/logout$", logout_page)]
