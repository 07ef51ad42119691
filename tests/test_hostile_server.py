"""The review server's doors, tried as an unfriendly visitor would (issue 23, point 5): with
accounts nothing is read without a login, every write needs its CSRF token whatever the
headers, sessions expire and logout ends them on the server, cookies are HttpOnly and
SameSite=Strict, failed logins are slowed, bundles are capped, audio answers byte ranges.

Everything goes through Datasette's own test client (httpx over ASGI); clocks are injected,
nothing sleeps."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
from pathlib import Path
from typing import Optional

import httpx
import pytest
import sqlite_utils
from click.testing import CliRunner

from test_review import PASSWORD, RECORDING_S, REVIEWER, build_store, run, write_wav

from intercept.review import ReviewError, ReviewOptions, hash_password, make_datasette

OTHER, OTHER_PASSWORD = "ali", "another long password"
NOTE = "heard twice on channel 4"  # a verdict note in the store: what an outsider must not read


@pytest.fixture()
def store(tmp_path) -> Path:
    recording = tmp_path / "radio.wav"
    write_wav(recording, RECORDING_S)
    db_path = tmp_path / "store.db"
    build_store(db_path, recording)
    db = sqlite_utils.Database(db_path)
    db["verdicts"].update(1, {"note": NOTE})
    db.conn.close()
    return db_path


def datasette(store, **options):
    accounts = {REVIEWER: hash_password(PASSWORD, iterations=1000),
                OTHER: hash_password(OTHER_PASSWORD, iterations=1000)}
    return make_datasette(store, ReviewOptions(**{"accounts": accounts, "secret": "hostile-test", **options}))


@pytest.fixture()
def ds(store):
    return datasette(store)


def doors(ds):
    from intercept.review.doors import doors_of

    return doors_of(ds)


class Clock:
    """An injected wall clock: tests move time instead of sleeping."""

    def __init__(self, now: Optional[float] = None):
        # From the real time: Datasette also checks the cookie's own expiry against it.
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def client(ds, address: str = "127.0.0.1", scheme: str = "http") -> httpx.AsyncClient:
    """A client of the whole app, as from `address` over `scheme`."""
    transport = httpx.ASGITransport(app=ds.app(), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://localhost")


async def csrf_token(http: httpx.AsyncClient) -> str:
    form = await http.get("/-/login")
    assert form.status_code == 200
    return http.cookies["ds_csrftoken"]


async def try_login(http: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    token = http.cookies.get("ds_csrftoken") or await csrf_token(http)
    return await http.post("/-/login", data={"username": name, "password": password, "csrftoken": token})


@contextlib.asynccontextmanager
async def logged_in(ds, name=REVIEWER, password=PASSWORD, **kwargs):
    """A client logged in as `name` (its cookie jar holds the session and CSRF cookies)."""
    async with client(ds, **kwargs) as http:
        response = await try_login(http, name, password)
        assert response.status_code == 302, response.text
        yield http


def verdicts(store) -> list[dict]:
    return list(sqlite_utils.Database(store).query("select line_id, verdict, reviewer from verdicts order by id"))


# Everything an anonymous visitor read on the old server: pages, JSON, CSV, SQL, audio, the
# desk's pages and JSON, bundles, verdicts with reviewers' notes, and the metadata.
READ_PATHS = [
    "/",
    "/store",
    "/store/flagged_lines",
    "/store/flagged_lines.json",
    "/store/lines.csv",
    "/store/verdicts.json",
    "/store/timeline.json?recording_id=1",
    "/store.json?sql=select+note+from+verdicts",
    "/-/intercept/audio/1.wav",
    "/-/intercept/audio/1.wav?context=30",
    "/-/intercept/lines.json?ids=1,2,3",
    "/-/intercept/context/1",
    "/-/intercept/activity",
    "/-/intercept/bundle.zip?ids=1",
    "/-/intercept/voices",
    "/-/metadata.json",
    "/-/actor.json",
]


@pytest.mark.parametrize("path", READ_PATHS)
def test_anonymous_reads_are_refused_with_accounts(ds, path):
    async def scenario():
        async with client(ds) as http:
            return await http.get(path), await http.get(path, headers={"accept": "text/html"})

    plain, browser = run(scenario())
    assert plain.status_code == 401, (path, plain.status_code)
    assert NOTE not in plain.text and "روباه" not in plain.text and "RIFF" not in plain.text
    # A browser is sent to the login page, which brings it back afterwards.
    assert browser.status_code == 302 and browser.headers["location"].startswith("/-/login?next=/")


def test_anonymous_verdict_is_refused_with_accounts(ds, store):
    async def scenario():
        async with client(ds) as http:
            token = await csrf_token(http)
            return await http.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed",
                                                                 "csrftoken": token})

    assert run(scenario()).status_code == 401
    assert verdicts(store) == [{"line_id": 3, "verdict": "unsure", "reviewer": "ali"}]


def test_logged_in_reviewers_read_everything(ds):
    async def scenario():
        async with logged_in(ds) as http:
            return {path: await http.get(path) for path in READ_PATHS}

    for path, response in run(scenario()).items():
        assert response.status_code in (200, 302), (path, response.status_code)
    assert NOTE in run(scenario())["/store/verdicts.json"].text


def test_login_page_and_its_styles_stay_open(ds):
    async def scenario():
        async with client(ds) as http:
            return [await http.get(path) for path in
                    ("/-/login", "/-/static/app.css", "/-/intercept/static/review.css")]

    assert [r.status_code for r in run(scenario())] == [200, 200, 200]


def test_password_hashes_are_never_shown(ds):
    """/-/metadata.json showed every reviewer's password hash to anyone (offline guessing)."""
    async def scenario():
        async with logged_in(ds) as http:
            return await http.get("/-/metadata.json")

    page = run(scenario())
    assert page.status_code == 200 and "pbkdf2" not in page.text and "password_hash" not in page.text


def test_public_read_allows_reads_but_not_writes(store):
    ds = datasette(store, public_read=True)

    async def scenario():
        async with client(ds) as http:
            reads = [await http.get(path) for path in
                     ("/store/flagged_lines.json", "/-/intercept/audio/1.wav", "/store/verdicts.json")]
            token = await csrf_token(http)
            write = await http.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed",
                                                                  "csrftoken": token})
            return reads, write

    reads, write = run(scenario())
    assert [r.status_code for r in reads] == [200, 200, 200]
    assert write.status_code == 403 and "log in" in write.text
    assert len(verdicts(store)) == 1


@pytest.mark.parametrize("authorization", ["Bearer anything", "Bearer dstok_forged"])
def test_csrf_is_checked_whatever_the_authorization_header(ds, store, authorization):
    """A logged-in POST skipped asgi-csrf's check when it carried any `Authorization: Bearer`."""
    async def scenario():
        async with logged_in(ds) as http:
            return await http.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed"},
                                   headers={"authorization": authorization})

    response = run(scenario())
    assert response.status_code == 403
    assert len(verdicts(store)) == 1, "no verdict written without the CSRF token"


def test_http_basic_credentials_open_nothing(ds, store):
    """datasette-auth-passwords took `Authorization: Basic` on every request: a login that
    bypassed sessions and throttling, and, with no cookie at all, asgi-csrf's check."""
    basic = "Basic " + base64.b64encode(f"{REVIEWER}:{PASSWORD}".encode()).decode()

    async def scenario():
        async with client(ds) as http:
            read = await http.get("/store/verdicts.json", headers={"authorization": basic})
            write = await http.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed"},
                                    headers={"authorization": basic})
            return read, write

    read, write = run(scenario())
    assert read.status_code == 401 and write.status_code == 401
    assert len(verdicts(store)) == 1


def test_voice_changes_need_the_csrf_token_too(ds):
    async def scenario():
        async with logged_in(ds) as http:
            return await http.post("/-/intercept/voices/1/name", data={"name": "operator"},
                                   headers={"authorization": "Bearer x"})

    assert run(scenario()).status_code == 403


def test_logout_ends_the_session_on_the_server(ds, store):
    async def scenario():
        async with logged_in(ds) as http:
            old_cookie = http.cookies["ds_actor"]
            token = http.cookies["ds_csrftoken"]
            assert (await http.get("/store/verdicts.json")).status_code == 200
            logout = await http.post("/-/logout", data={"csrftoken": token})
        # Whoever kept the cookie (a copy, a proxy log, a shared machine) sends it again.
        async with client(ds) as replay:
            replay.cookies.set("ds_actor", old_cookie)
            replay.cookies.set("ds_csrftoken", token)
            read = await replay.get("/store/verdicts.json")
            write = await replay.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed",
                                                                    "csrftoken": token})
        return logout, read, write

    logout, read, write = run(scenario())
    assert logout.status_code == 302
    assert "ds_actor=" in logout.headers["set-cookie"]
    assert read.status_code == 401 and write.status_code == 401
    # The server tells the browser to drop the dead cookie.
    assert "ds_actor=;" in read.headers["set-cookie"] and "Max-Age=0" in read.headers["set-cookie"]
    assert len(verdicts(store)) == 1


def test_logout_needs_its_csrf_token(ds):
    async def scenario():
        async with logged_in(ds) as http:
            refused = await http.post("/-/logout", data={}, headers={"authorization": "Bearer x"})
            still = await http.get("/store/verdicts.json")
            return refused, still

    refused, still = run(scenario())
    assert refused.status_code == 403 and still.status_code == 200


@pytest.mark.parametrize("hours", [None, 1.5])
def test_sessions_expire(store, hours):
    ds = datasette(store, **({"session_hours": hours} if hours else {}))
    clock = Clock()
    doors(ds).clock = clock
    lifetime = (hours or 12) * 3600

    async def scenario():
        async with logged_in(ds) as http:
            clock.now += lifetime - 1
            before = await http.get("/store/verdicts.json")
            clock.now += 2
            after = await http.get("/store/verdicts.json")
            return before, after

    before, after = run(scenario())
    assert before.status_code == 200
    assert after.status_code == 401, "an expired session opens nothing, whatever the cookie says"


def test_session_cookie_flags(store):
    async def login_headers(ds, scheme="http"):
        async with client(ds, scheme=scheme) as http:
            form = await http.get("/-/login")
            response = await try_login(http, REVIEWER, PASSWORD)
            return form.headers.get_list("set-cookie"), response.headers.get_list("set-cookie")

    form_cookies, cookies = run(login_headers(datasette(store)))
    (session,) = [c for c in cookies if c.startswith("ds_actor=")]
    attributes = {part.strip().split("=")[0].lower() for part in session.split(";")[1:]}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes and "secure" not in attributes
    assert "SameSite=Strict" in session and "Max-Age=43200" in session
    (csrf,) = [c for c in form_cookies if c.startswith("ds_csrftoken=")]
    assert "HttpOnly" in csrf and "SameSite=Strict" in csrf

    # Over TLS, or behind a proxy that terminates it (--https), cookies are Secure.
    for ds, scheme in ((datasette(store), "https"), (datasette(store, https=True), "http")):
        form_cookies, cookies = run(login_headers(ds, scheme))
        assert all("; Secure" in c for c in form_cookies + cookies if c.startswith(("ds_actor=", "ds_csrftoken=")))


def test_failed_logins_are_slowed_per_account(ds):
    from intercept.review.doors import BASE_DELAY_S, FREE_FAILURES

    clock = Clock()
    doors(ds).clock = clock

    async def scenario():
        answers = []
        async with client(ds, address="10.0.0.1") as http:
            for _ in range(FREE_FAILURES):
                answers.append((await try_login(http, REVIEWER, "wrong")).status_code)
            answers.append((await try_login(http, REVIEWER, "wrong again")).status_code)  # locks 1 s
        # The right password, from elsewhere, while the account is locked: not even checked.
        async with client(ds, address="10.0.0.2") as other:
            locked = await try_login(other, REVIEWER, PASSWORD)
            # Another account from that address is not held up.
            fine = await try_login(other, OTHER, OTHER_PASSWORD)
        clock.now += BASE_DELAY_S
        async with client(ds, address="10.0.0.2") as later:
            after = await try_login(later, REVIEWER, PASSWORD)
        return answers, locked, fine, after

    answers, locked, fine, after = run(scenario())
    assert answers == [200] * (FREE_FAILURES + 1)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert "ds_actor" not in locked.cookies and "Too many failed logins" in locked.text
    assert fine.status_code == 302
    assert after.status_code == 302, "the lockout ends; a success clears the account's count"


def test_failed_logins_are_slowed_per_address(ds):
    """Guessing one password across many accounts (spraying) is slowed by address."""
    from intercept.review.doors import FREE_FAILURES

    doors(ds).clock = Clock()

    async def scenario():
        async with client(ds, address="10.0.0.9") as http:
            for index in range(FREE_FAILURES + 1):
                assert (await try_login(http, f"user{index}", "Winter2026!")).status_code == 200
            return await try_login(http, REVIEWER, PASSWORD)

    assert run(scenario()).status_code == 429


def test_lockouts_double_and_are_capped():
    from intercept.review.doors import LoginThrottle

    clock = Clock(0.0)
    throttle = LoginThrottle(clock, free=3, base_s=1.0, max_s=60.0)
    key = [("account", "maryam")]
    waits = []
    for _ in range(12):
        throttle.failed(key)
        waits.append(throttle.wait_s(key))
    assert waits == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    clock.now += 60 + 60
    assert throttle.wait_s(key) == 0
    throttle.failed(key)
    assert throttle.wait_s(key) == 0, "a key is forgotten max_s after its lockout ends"
    throttle.succeeded(key)
    assert throttle.wait_s(key) == 0


def test_each_failure_doubles_the_lockout_and_a_locked_login_is_not_checked(ds):
    """The lockout is an answer (429, Retry-After), never a sleep: nobody else waits."""
    from intercept.review.doors import FREE_FAILURES

    clock = Clock()
    doors(ds).clock = clock
    account = [("account", REVIEWER)]

    async def scenario():
        async with client(ds, address="10.0.0.3") as http:
            for _ in range(FREE_FAILURES + 5):
                assert (await try_login(http, REVIEWER, "wrong")).status_code == 200
                waited = doors(ds).throttle.wait_s(account)
                clock.now += waited
            clock.now -= waited  # still inside the last lockout
            return await try_login(http, REVIEWER, PASSWORD)

    locked = run(scenario())
    assert locked.status_code == 429 and locked.headers["retry-after"] == "16"  # 1, 2, 4, 8, 16 s


def test_bundle_lines_per_request_are_capped(store):
    ds = datasette(store, bundle_max_lines=2)

    async def scenario():
        async with logged_in(ds) as http:
            too_many = await http.get("/-/intercept/bundle.zip?ids=1,2,3")
            default = await http.get("/-/intercept/bundle.zip?ids=" + ",".join(str(i) for i in range(1, 102)))
            fine = await http.get("/-/intercept/bundle.zip?ids=1,2")
            return too_many, default, fine

    too_many, default, fine = run(scenario())
    assert too_many.status_code == 400 and "at most 2 lines" in too_many.text
    assert fine.status_code == 200 and fine.headers["content-type"] == "application/zip"

    async def default_cap():
        async with logged_in(datasette(store)) as http:
            return await http.get("/-/intercept/bundle.zip?ids=" + ",".join(str(i) for i in range(1, 102)))

    capped = run(default_cap())
    assert capped.status_code == 400 and "at most 100 lines" in capped.text


def test_one_bundle_at_a_time_per_reviewer(ds, monkeypatch):
    from intercept.review import pages

    started, release = threading.Event(), threading.Event()
    real = pages._bundle_bytes

    def slow_bundle(*args):
        started.set()
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(pages, "_bundle_bytes", slow_bundle)

    async def scenario():
        async with logged_in(ds) as maryam, logged_in(ds, OTHER, OTHER_PASSWORD) as ali:
            first = asyncio.create_task(maryam.get("/-/intercept/bundle.zip?ids=1"))
            await asyncio.to_thread(started.wait, 10)
            second = await maryam.get("/-/intercept/bundle.zip?ids=2")
            # The cutting runs in a worker thread: the server answers others meanwhile.
            page = await ali.get("/store/flagged_lines.json")
            release.set()
            first = await first
            third = await maryam.get("/-/intercept/bundle.zip?ids=2")
            return first, second, page, third

    first, second, page, third = run(scenario())
    assert second.status_code == 429 and "retry-after" in second.headers
    assert page.status_code == 200
    assert first.status_code == 200 and third.status_code == 200


def test_audio_answers_byte_ranges(store):
    ds = datasette(store, public_read=True)

    async def scenario():
        async with client(ds) as http:
            url = "/-/intercept/audio/1.wav"
            whole = await http.get(url)
            first = await http.get(url, headers={"range": "bytes=0-99"})
            tail = await http.get(url, headers={"range": "bytes=-10"})
            open_ended = await http.get(url, headers={"range": "bytes=1000-"})
            beyond = await http.get(url, headers={"range": f"bytes={len(whole.content)}-"})
            return whole, first, tail, open_ended, beyond

    whole, first, tail, open_ended, beyond = run(scenario())
    size = len(whole.content)
    assert whole.status_code == 200 and whole.headers["content-length"] == str(size)
    assert whole.headers["accept-ranges"] == "bytes" and whole.content[:4] == b"RIFF"
    assert first.status_code == 206 and first.content == whole.content[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}" and first.headers["content-length"] == "100"
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    assert open_ended.status_code == 206 and open_ended.content == whole.content[1000:]
    assert open_ended.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"


def test_byte_range_rules():
    from intercept.review.ranges import byte_range

    assert byte_range(None, 100) is None
    assert byte_range("bytes=0-", 100) == (0, 99)
    assert byte_range("bytes=10-500", 100) == (10, 99)
    assert byte_range("bytes=-500", 100) == (0, 99)
    assert byte_range("bytes=0-1,5-6", 100) is None  # several ranges: the whole body, as RFC 9110 allows
    assert byte_range("items=0-1", 100) is None
    assert byte_range("bytes=50-10", 100) == "unsatisfiable"
    assert byte_range("bytes=-0", 100) == "unsatisfiable"


def test_without_accounts_the_server_stays_on_this_machine(store, monkeypatch):
    from intercept.review import check_binding

    with pytest.raises(ReviewError, match="no reviewer accounts"):
        check_binding("0.0.0.0", ReviewOptions())
    check_binding("127.0.0.1", ReviewOptions())
    check_binding("::1", ReviewOptions())
    check_binding("0.0.0.0", ReviewOptions(public_read=True))
    check_binding("0.0.0.0", ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)}))

    from intercept.cli import cli

    served = []
    monkeypatch.setattr("intercept.review.serve", lambda *args, **kwargs: served.append(kwargs))
    monkeypatch.delenv("INTERCEPT_REVIEWER_MARYAM", raising=False)
    refused = CliRunner().invoke(cli, ["review", str(store), "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "no reviewer accounts" in refused.output and not served
    local = CliRunner().invoke(cli, ["review", str(store)])
    assert local.exit_code == 0 and served and served[0]["host"] == "127.0.0.1"
    assert "listening on 127.0.0.1 only" in local.stdout and "anyone on this machine" in local.stdout
    accounts = store.parent / "reviewers.yaml"
    accounts.write_text(f"{REVIEWER}: {hash_password(PASSWORD, iterations=1000)}\n", encoding="utf-8")
    remote = CliRunner().invoke(cli, ["review", str(store), "--host", "0.0.0.0", "--accounts", str(accounts)])
    assert remote.exit_code == 0 and served[-1]["host"] == "0.0.0.0" and "plain http" in remote.stderr
    assert "reviewers log in to read" in remote.stdout


def test_new_routes_are_behind_the_door_without_extra_work(ds, store):
    """A route a later plugin adds (corrections, the team desk) is closed to anonymous
    visitors by default, and `write_route` gives a write route the login and CSRF checks,
    even where another plugin turns Datasette's own CSRF check off (its skip_csrf hook)."""
    import types

    from datasette import hookimpl
    from datasette.plugins import pm
    from datasette.utils.asgi import Response

    from intercept.review.doors import write_route

    written = []

    async def read(request, datasette):
        return Response.text("a secret page")

    @write_route
    async def write(request, datasette):
        written.append((await request.post_vars()).get("text"))
        return Response.text("written")

    later = types.ModuleType("later_plugin")
    later.register_routes = hookimpl(lambda datasette: [(r"^/-/intercept/later$", read),
                                                        (r"^/-/intercept/later/write$", write)])
    later.register_routes.__name__ = "register_routes"
    later.skip_csrf = hookimpl(lambda datasette, scope: True)
    later.skip_csrf.__name__ = "skip_csrf"
    pm.register(later, name="later-plugin")
    try:
        with_later = datasette(store)

        async def scenario():
            async with client(with_later) as anonymous:
                read_anonymously = await anonymous.get("/-/intercept/later")
                write_anonymously = await anonymous.post("/-/intercept/later/write", data={"text": "w"})
            async with logged_in(with_later) as http:
                read_logged_in = await http.get("/-/intercept/later")
                no_token = await http.post("/-/intercept/later/write", data={"text": "x"},
                                           headers={"authorization": "Bearer x"})
                with_token = await http.post("/-/intercept/later/write",
                                             data={"text": "y", "csrftoken": http.cookies["ds_csrftoken"]})
            return read_anonymously, write_anonymously, read_logged_in, no_token, with_token

        read_anonymously, write_anonymously, read_logged_in, no_token, with_token = run(scenario())
    finally:
        pm.unregister(later)
    assert read_anonymously.status_code == 401 and "secret" not in read_anonymously.text
    assert write_anonymously.status_code == 401
    assert read_logged_in.status_code == 200
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    assert with_token.status_code == 200 and written == ["y"]


@pytest.mark.parametrize("cookie_headers", [
    lambda old, token: [("cookie", f"ds_csrftoken={token}"), ("cookie", f"ds_actor={old}")],
    lambda old, token: [("cookie", f"ds_actor={old}; ds_csrftoken={token}; ds_actor={old}")],
    lambda old, token: [("cookie", f"ds_csrftoken={token}; ds_actor={old}; bad\\cookie=1")],
    lambda old, token: [("cookie", f'ds_csrftoken={token}; ds_actor="{old};"')],
], ids=["two-cookie-headers", "repeated", "before-a-malformed-cookie", "quoted"])
def test_a_logged_out_cookie_cannot_write_under_public_read(store, cookie_headers):
    """With reading open, a dead session cookie must still not write, however the Cookie
    headers are arranged: Datasette sees the live session or none."""
    ds = datasette(store, public_read=True)

    async def scenario():
        async with logged_in(ds) as http:
            old, token = http.cookies["ds_actor"], http.cookies["ds_csrftoken"]
            await http.post("/-/logout", data={"csrftoken": token})
        async with client(ds) as replay:
            return await replay.post("/-/intercept/verdict", content=f"line_id=1&verdict=confirmed&csrftoken={token}",
                                     headers=[("content-type", "application/x-www-form-urlencoded"),
                                              *cookie_headers(old, token)])

    response = run(scenario())
    assert response.status_code == 403 and "log in" in response.text, response.text
    assert len(verdicts(store)) == 1
