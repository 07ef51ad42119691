"""The review UI through Datasette's own test client: start page, right-to-left Farsi,
audio clips, refused path tricks, verdicts behind a login."""
from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from intercept.store import CREATE, Store
from intercept.review import (
    ReviewError,
    ReviewOptions,
    accounts_from_environ,
    hash_password,
    load_accounts,
    make_datasette,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16000
RECORDING_S = 10.0
REVIEWER = "maryam"
PASSWORD = "correct horse"
FARSI_LINE = "امشب برویم ببینیم پرنده است یا روباه"

def write_wav(path: Path, seconds: float) -> None:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())


def build_store(db_path: Path, recording_path: Path) -> None:
    """The real schema (intercept.store.Store), then rows with known ids."""
    Store(db_path, CREATE).close()
    db = sqlite_utils.Database(db_path)
    db["recordings"].insert(
        {"id": 1, "path": str(recording_path), "sha256": "0" * 64, "duration_s": RECORDING_S, "format": "wav",
         "size_bytes": recording_path.stat().st_size, "status": "done", "error": None, "run_id": 1,
         "processed_at": "2024-01-01T00:00:00+00:00"},
        pk="id",
    )
    db["recordings"].insert(
        {"id": 2, "path": str(recording_path.parent / "gone.wav"), "sha256": "1" * 64, "duration_s": 5.0,
         "format": "wav", "size_bytes": 1, "status": "done", "error": None, "run_id": 1, "processed_at": None},
    )
    db["transmissions"].insert_all(
        [{"id": 1, "recording_id": 1, "idx": 0, "start_s": 0.5, "end_s": 9.5},
         {"id": 2, "recording_id": 2, "idx": 0, "start_s": 0.0, "end_s": 5.0}],
        pk="id", foreign_keys=[("recording_id", "recordings", "id")],
    )
    line = {"text_fa_raw": "", "avg_logprob": -0.3, "no_speech_prob": 0.05, "compression_ratio": 1.4,
            "suspect": None, "engine": "faster-whisper", "model": "base", "translator": "none"}
    db["lines"].insert_all(
        [
            {**line, "id": 1, "recording_id": 1, "transmission_id": 1, "idx": 0, "start_s": 1.0, "end_s": 3.5,
             "text_fa": FARSI_LINE, "text_en": "tonight let's go see whether it is a bird or a fox"},
            {**line, "id": 2, "recording_id": 1, "transmission_id": 1, "idx": 1, "start_s": 4.0, "end_s": 6.0,
             "text_fa": "سلام", "text_en": "hello"},
            {**line, "id": 3, "recording_id": 1, "transmission_id": 1, "idx": 2, "start_s": 7.0, "end_s": 9.0,
             "text_fa": "روباه آمد", "text_en": "the fox came", "suspect": "repetition"},
            {**line, "id": 4, "recording_id": 2, "transmission_id": 2, "idx": 0, "start_s": 0.5, "end_s": 2.0,
             "text_fa": "پرنده", "text_en": "bird"},
        ],
        pk="id",
        foreign_keys=[("recording_id", "recordings", "id"), ("transmission_id", "transmissions", "id")],
    )
    flag = {"severity": "high", "span_start": 0, "span_end": 5, "lexicon_version": "test-1"}
    db["flags"].insert_all(
        [
            {**flag, "id": 10, "line_id": 1, "concept": "fox", "category": "animal-code", "kind": "exact",
             "score": 1.0, "matched": "روباه", "term": "روباه"},
            {**flag, "id": 11, "line_id": 1, "concept": "bird", "category": "animal-code", "kind": "morph",
             "score": 0.9, "matched": "پرنده", "term": "پرنده"},
            {**flag, "id": 12, "line_id": 3, "concept": "fox", "category": "animal-code", "kind": "fuzzy",
             "score": 0.8, "matched": "روباه", "term": "روباه"},
            {**flag, "id": 13, "line_id": 4, "concept": "bird", "category": "animal-code", "kind": "exact",
             "score": 0.7, "matched": "پرنده", "term": "پرنده"},
        ],
        pk="id", foreign_keys=[("line_id", "lines", "id")],
    )
    db["lexicon_terms"].insert(
        {"id": 1, "concept": "fox", "category": "animal-code", "severity": "high", "form": "روباه", "lang": "fa",
         "lexicon_version": "test-1"}, pk="id")
    db["runs"].insert({"id": 1, "started_at": "2024-01-01", "finished_at": "2024-01-01", "engine": "faster-whisper",
                       "model": "base", "settings": "{}", "versions": "{}", "summary": "{}"}, pk="id")
    db["verdicts"].insert({"line_id": 3, "flag_id": None, "verdict": "unsure", "note": "static", "reviewer": "ali",
                           "at": "2024-01-02T10:00:00+00:00"})
    db.conn.close()


@pytest.fixture()
def store(tmp_path) -> Path:
    recording = tmp_path / "radio.wav"
    write_wav(recording, RECORDING_S)
    db_path = tmp_path / "store.db"
    build_store(db_path, recording)
    return db_path


@pytest.fixture()
def ds(store):
    # Few iterations: the hash format is the real one, the test just need not wait for it.
    accounts = {REVIEWER: hash_password(PASSWORD, iterations=1000)}
    # Reading is open here (public_read) so that the reading tests need no login; the doors
    # themselves (login by default, sessions, CSRF) are tests/test_hostile_server.py's.
    return make_datasette(store, ReviewOptions(accounts=accounts, secret="test-secret", public_read=True))


def run(coroutine):
    return asyncio.run(coroutine)


async def login(ds) -> dict:
    """Log in through datasette-auth-passwords' form, as a browser would; returns the cookies."""
    form = await ds.client.get("/-/login")
    csrftoken = form.cookies["ds_csrftoken"]
    response = await ds.client.post(
        "/-/login",
        data={"username": REVIEWER, "password": PASSWORD, "csrftoken": csrftoken},
        cookies={"ds_csrftoken": csrftoken},
    )
    assert response.status_code == 302, response.text
    return {"ds_actor": response.cookies["ds_actor"], "ds_csrftoken": csrftoken}


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body)) as clip:
        return clip.getnframes() / clip.getframerate()


# ---------------------------------------------------------------- start page and rendering


def test_start_page_is_the_queue_of_lines_awaiting_review(ds):
    async def scenario():
        start = await ds.client.get("/")
        assert start.status_code == 302
        assert start.headers["location"] == "/-/intercept/queue"
        return await ds.client.get("/-/intercept/queue")

    page = run(scenario())
    assert page.status_code == 200
    body = page.text
    assert "<title>Lines awaiting review · intercept review</title>" in body
    # Lines 1 and 4 are flagged and unjudged; line 3 has a verdict, line 2 no flag.
    items = re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', body)
    assert items == ["1", "4"], "highest score first, judged and unflagged lines left out"
    for shown in ("tonight let", "برویم ببینیم", "radio.wav", "/-/intercept/audio/1.wav"):
        assert shown in body, shown


def test_table_view_of_the_queue_stays_for_analysts(ds):
    async def scenario():
        start = await ds.client.get("/-/intercept/table/flagged_lines")
        assert start.status_code == 302
        location = start.headers["location"]
        assert location.startswith("/store/flagged_lines?")
        assert "verdict__isnull=1" in location and "_sort_desc=score" in location
        return await ds.client.get(location)

    page = run(scenario())
    assert page.status_code == 200
    body = page.text
    # Lines 1 and 4 are flagged and unjudged; line 3 has a verdict, line 2 no flag.
    assert 'data-line-id="1"' in body and 'data-line-id="4"' in body
    assert 'data-line-id="3"' not in body and 'data-line-id="2"' not in body
    assert body.index('data-line-id="1"') < body.index('data-line-id="4"'), "highest score first"
    for shown in ("tonight let&#39;s go see", "fox,bird", "exact,morph", "radio.wav", "-0.3"):
        assert shown in body, shown
    # Facets the reviewers filter by (concept, category and kind count each value on its own).
    facets = re.findall(r'<div class="facet-info[^"]*"[^>]*data-column="([^"]+)"', body)
    assert sorted(facets) == ["category", "concept", "kind", "recording", "verdict", "voice"], facets


def test_the_tables_description_names_the_queues_threshold_as_the_code_has_it(ds):
    from intercept.scoring import DEFAULT_THRESHOLD

    page = run(ds.client.get("/store/flagged_lines"))
    assert page.status_code == 200
    assert f"hides lines scoring under {DEFAULT_THRESHOLD:g}" in page.text
    assert f"score &gt;= {DEFAULT_THRESHOLD:g}" in page.text or f"score >= {DEFAULT_THRESHOLD:g}" in page.text
    assert "{threshold}" not in page.text


def test_farsi_cells_are_right_to_left(ds):
    page = run(ds.client.get("/store/flagged_lines"))
    cells = re.findall(r'<td class="col-text_fa[^"]*"[^>]*>(.*?)</td>', page.text, re.S)
    assert len(cells) == 3
    for cell in cells:
        assert 'dir="rtl"' in cell and 'class="intercept-fa"' in cell
    assert FARSI_LINE in page.text
    english = re.findall(r'<td class="col-text_en[^"]*"[^>]*>(.*?)</td>', page.text, re.S)
    assert english and all('dir="rtl"' not in cell for cell in english)
    css = run(ds.client.get("/-/intercept/static/review.css"))
    assert css.status_code == 200
    assert "direction: rtl" in css.text and "unicode-bidi: plaintext" in css.text
    assert "/-/intercept/static/review.css" in page.text


def test_full_text_search_in_both_languages(ds):
    farsi = run(ds.client.get("/store/flagged_lines.json", params={"_search": "روباه", "_shape": "array"}))
    english = run(ds.client.get("/store/flagged_lines.json", params={"_search": "bird", "_shape": "array"}))
    assert sorted(row["line_id"] for row in farsi.json()) == [1, 3]
    assert sorted(row["line_id"] for row in english.json()) == [1, 4]


def test_timeline_lists_every_line_of_a_recording_in_order(ds):
    page = run(ds.client.get("/store/timeline.json", params={"recording_id": 1, "_shape": "array"}))
    rows = page.json()
    assert [row["line_id"] for row in rows] == [1, 2, 3]
    assert [row["concepts"] is not None for row in rows] == [True, False, True]
    html_page = run(ds.client.get("/store/timeline", params={"recording_id": 1}))
    assert html_page.status_code == 200 and 'data-line-id="2"' in html_page.text
    flagged = run(ds.client.get("/store/flagged_lines"))
    assert "/store/timeline?recording_id=1" in flagged.text, "recording cells link to their timeline"


def test_recording_summary_counts_lines_flags_and_verdicts(ds):
    rows = run(ds.client.get("/store/recording_summary.json", params={"_shape": "array"})).json()
    counts = {row["recording_id"]: (row["lines"], row["flagged"], row["reviewed"]) for row in rows}
    assert counts == {1: (3, 2, 1), 2: (1, 1, 0)}


def facet_counts(ds, **params) -> dict:
    page = run(ds.client.get("/store/flagged_lines.json", params=params)).json()
    return {name: {value["value"]: value["count"] for value in facet["results"]}
            for name, facet in page["facet_results"].items()}


def test_flag_facets_count_each_concept_on_its_own(ds):
    # Line 1 has fox and bird, line 3 fox (judged), line 4 bird.
    every = facet_counts(ds)
    assert every["concept"] == {"fox": 2, "bird": 2}, "not 'fox,bird': 1, 'fox': 1, 'bird': 1"
    assert every["kind"] == {"exact": 2, "morph": 1, "fuzzy": 1}
    assert every["category"] == {"animal-code": 3}
    queue = facet_counts(ds, verdict__isnull="1")
    assert queue["concept"] == {"bird": 2, "fox": 1}
    page = run(ds.client.get("/store/flagged_lines"))
    assert 'data-column="concept"' in page.text and "_flag_concept=fox" in page.text


def test_flag_filters_keep_lines_with_each_chosen_value(ds):
    def line_ids(params):
        pairs = list(params.items()) if isinstance(params, dict) else params
        page = run(ds.client.get("/store/flagged_lines.json", params=pairs + [("_shape", "objects")])).json()
        return sorted(row["line_id"] for row in page["rows"])

    assert line_ids({"_flag_concept": "fox"}) == [1, 3]
    assert line_ids([("_flag_concept", "fox"), ("_flag_concept", "bird")]) == [1]
    assert line_ids({"_flag_concept": "fox", "_flag_kind": "exact"}) == [1]
    assert line_ids({"_flag_concept": "wolf"}) == []
    lines = run(ds.client.get("/store/lines.json", params={"_flag_concept": "bird", "_shape": "array"})).json()
    assert sorted(row["id"] for row in lines) == [1, 4]
    described = run(ds.client.get("/store/flagged_lines.json", params={"_flag_concept": "fox"})).json()
    assert 'a flag with concept "fox"' in described["human_description_en"]


@pytest.mark.parametrize("typed", [
    "ببينيم",  # Arabic yeh, as Arabic keyboards type it
    "ببینیم",  # already normalised
    "بِبینیم",  # with a diacritic
])
def test_farsi_search_is_normalised_like_the_stored_text(ds, typed):
    found = run(ds.client.get("/store/flagged_lines.json", params={"_search": typed, "_shape": "array"}))
    assert [row["line_id"] for row in found.json()] == [1]


def test_english_search_is_left_alone(ds):
    found = run(ds.client.get("/store/flagged_lines.json", params={"_search": "fox", "_shape": "array"}))
    assert sorted(row["line_id"] for row in found.json()) == [1, 3]


def test_review_summary_sql_keeps_the_view_and_follows_every_write(tmp_path):
    """The store's line_review summary table (migration 0004): flagged_lines over it equals
    the GROUP BY view, before and after verdicts, re-flags and translations."""
    from intercept.store import RecordingFacts
    from intercept.store.team import LINE_REVIEW_SELECT
    from intercept.types import Flag, Line, Transmission

    store = Store(tmp_path / "s.db", CREATE)
    lines = [Line(1.0, 2.0, "پرنده روباه", text_fa="پرنده روباه", text_en="bird fox"),
             Line(3.0, 4.0, "سلام", text_fa="سلام", text_en="hello"),
             Line(5.0, 6.0, "روباه", text_fa="روباه", text_en="fox")]
    flags = [[Flag("bird", "animal_code", "exact", 0.9, 0, 5, "پرنده"), Flag("fox", "animal_code", "fuzzy", 0.8, 6, 11, "روباه")],
             [], [Flag("fox", "animal_code", "exact", 1.0, 0, 5, "روباه")]]
    store.save_recording(RecordingFacts(path="/r/a.wav", sha256="a" * 64), [Transmission(0, 0.0, 7.0)], lines, flags,
                         run_id=None, engine="e", model="m", translator="t", lexicon_version="v1")
    columns = ("line_id, recording_id, recording, start_s, end_s, text_fa, text_en, concepts, categories, kinds, "
               "score, avg_logprob, no_speech_prob, suspect, verdict, reviewer, verdict_at, confirmed, reviewers")

    def expected():
        return store.rows(f"select {columns} from ({LINE_REVIEW_SELECT}) order by line_id")

    def actual():
        return store.rows(f"select {columns} from flagged_lines order by line_id")

    before = expected()
    assert actual() == before and len(before) == 2
    line_ids = [row["id"] for row in store.iter_lines()]
    store.add_verdict(line_ids[0], "confirmed", "maryam")
    store.add_verdict(line_ids[0], "unsure", "ali", note="second look")
    store.save_derived([(line_ids[1], lines[1], [Flag("dog", "animal_code", "exact", 0.7, 0, 4, "سلام")]),
                        (line_ids[2], lines[2], [])], "v2")
    lines[0].text_en = "a bird and a fox"
    store.save_derived([(line_ids[0], lines[0], flags[0])], "v1", translator=("whisper", None))
    after = actual()
    assert after == expected()
    # maryam confirmed the line's flags, ali is unsure of them: disputed (no lead has decided).
    assert [(row["line_id"], row["concepts"], row["verdict"], row["reviewers"]) for row in after] == [
        (line_ids[0], "bird,fox", "disputed", 2), (line_ids[1], "dog", None, 0)]
    assert after[0]["text_en"] == "a bird and a fox"
    store.close()


# ---------------------------------------------------------------- audio


def test_audio_route_returns_the_lines_stretch(ds):
    clip = run(ds.client.get("/-/intercept/audio/1.wav"))
    assert clip.status_code == 200
    assert clip.headers["content-type"] == "audio/wav"
    assert wav_seconds(clip.content) == pytest.approx(2.5, abs=0.01)
    with_context = run(ds.client.get("/-/intercept/audio/1.wav", params={"context": "2"}))
    # 2 s either side, clamped at the start of the recording: [0, 5.5].
    assert wav_seconds(with_context.content) == pytest.approx(5.5, abs=0.01)


def test_audio_of_a_missing_recording_is_gone_with_a_reason(ds):
    response = run(ds.client.get("/-/intercept/audio/4.wav"))
    assert response.status_code == 410
    assert "gone.wav" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/-/intercept/audio/../../etc/passwd",
        "/-/intercept/audio/..%2F..%2Fetc%2Fpasswd.wav",
        "/-/intercept/audio/1.5.wav",
        "/-/intercept/audio/-1.wav",
        "/-/intercept/audio/abc.wav",
        "/-/intercept/audio/1.wav/../../../etc/passwd",
        "/-/intercept/audio/%2Fetc%2Fpasswd.wav",
        "/-/intercept/audio/99.wav",  # no such line
        "/-/intercept/audio/10.wav",  # a flag id, not a line id
    ],
)
def test_audio_route_refuses_path_tricks(ds, path):
    # Datasette answers some encodings with a redirect to its tilde-encoded form: follow it.
    response = run(ds.client.get(path, follow_redirects=True))
    assert response.status_code == 404
    assert response.headers.get("content-type") != "audio/wav"


@pytest.mark.parametrize(
    "params",
    [
        {"path": "/etc/passwd"},
        {"file": "../radio.wav"},
        {"context": "/etc/passwd"},
        {"context": "-1"},
        {"context": "1e9"},
        {"context": "nan"},
    ],
)
def test_audio_route_refuses_anything_but_a_context_length(ds, params):
    response = run(ds.client.get("/-/intercept/audio/1.wav", params=params))
    assert response.status_code == 400
    assert response.headers.get("content-type") != "audio/wav"


# ---------------------------------------------------------------- verdicts


def verdict_rows(store: Path) -> list[dict]:
    db = sqlite_utils.Database(store)
    try:
        return list(db["verdicts"].rows_where(order_by="id"))
    finally:
        db.conn.close()


def test_anonymous_verdict_refused(ds, store):
    response = run(ds.client.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed"}))
    assert response.status_code == 403
    assert len(verdict_rows(store)) == 1, "nothing written"
    page = run(ds.client.get("/store/flagged_lines"))
    assert '"canWrite": false' in page.text


def test_forged_actor_cookie_refused(ds, store):
    response = run(ds.client.post(
        "/-/intercept/verdict",
        data={"line_id": "1", "verdict": "confirmed"},
        cookies={"ds_actor": json.dumps({"a": {"id": REVIEWER}})},
    ))
    assert response.status_code == 403
    assert len(verdict_rows(store)) == 1


def test_wrong_password_does_not_log_in(ds):
    async def scenario():
        form = await ds.client.get("/-/login")
        token = form.cookies["ds_csrftoken"]
        return await ds.client.post("/-/login", data={"username": REVIEWER, "password": "nope", "csrftoken": token},
                                    cookies={"ds_csrftoken": token})

    response = run(scenario())
    assert response.status_code == 200 and "ds_actor" not in response.cookies
    assert "Invalid username or password" in response.text


def test_logged_in_verdict_accepted_and_shown(ds, store):
    async def scenario():
        cookies = await login(ds)
        page = await ds.client.get("/store/flagged_lines", cookies=cookies)
        assert '"canWrite": true' in page.text
        forms = re.findall(r'<form class="intercept-verdict".*?</form>', page.text, re.S)
        assert len(forms) == 3, "one verdict form per flagged line, judged or not"
        # Enter in the note submits the form's default button: a disabled one, so nothing.
        assert all(re.match(r'<form[^>]*><button type="submit" disabled', form) for form in forms)
        assert any('name="line_id" value="1"' in form and 'value="confirmed"' in form for form in forms)
        response = await ds.client.post(
            "/-/intercept/verdict",
            data={"line_id": "1", "flag_id": "10", "verdict": "confirmed", "note": "fox = courier",
                  "reviewer": "someone-else", "csrftoken": cookies["ds_csrftoken"],
                  "next": "/store/flagged_lines?verdict__isnull=1"},
            cookies=cookies,
        )
        assert response.status_code == 302
        assert response.headers["location"] == "/store/flagged_lines?verdict__isnull=1"
        return await ds.client.get("/store/flagged_lines.json", params={"_shape": "array"})

    rows = {row["line_id"]: row for row in run(scenario()).json()}
    # The verdict is on flag 10 (fox); bird awaits review, so the line stays in the queue.
    assert rows[1]["verdict"] is None and rows[1]["confirmed"] == 1 and rows[1]["reviewer"] == REVIEWER
    written = verdict_rows(store)[-1]
    assert written["line_id"] == 1 and written["flag_id"] == 10 and written["note"] == "fox = courier"
    assert written["concept"] == "fox"
    assert written["reviewer"] == REVIEWER, "the reviewer comes from the login, never the form"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", written["at"])


def test_logged_in_verdict_without_csrf_token_refused(ds, store):
    async def scenario():
        cookies = await login(ds)
        return await ds.client.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed"},
                                    cookies=cookies)

    response = run(scenario())
    assert response.status_code == 403
    assert len(verdict_rows(store)) == 1


@pytest.mark.parametrize(
    "form, status",
    [
        ({"line_id": "1", "verdict": "maybe"}, 400),
        ({"line_id": "x", "verdict": "unsure"}, 400),
        ({"line_id": "99", "verdict": "unsure"}, 404),
        ({"line_id": "1", "flag_id": "12", "verdict": "unsure"}, 400),  # flag 12 belongs to line 3
    ],
)
def test_bad_verdicts_refused(ds, store, form, status):
    async def scenario():
        cookies = await login(ds)
        return await ds.client.post("/-/intercept/verdict", data={**form, "csrftoken": cookies["ds_csrftoken"]},
                                    cookies=cookies)

    response = run(scenario())
    assert response.status_code == status, response.text
    assert len(verdict_rows(store)) == 1


def test_offsite_next_is_not_followed(ds):
    async def scenario():
        cookies = await login(ds)
        return await ds.client.post(
            "/-/intercept/verdict",
            data={"line_id": "4", "verdict": "false_positive", "next": "//evil.example/",
                  "csrftoken": cookies["ds_csrftoken"]},
            cookies=cookies,
        )

    response = run(scenario())
    assert response.status_code == 200
    assert response.json()["verdict"] == "false_positive"


# ---------------------------------------------------------------- setup and bad input


def test_bad_store_named_in_error(tmp_path):
    with pytest.raises(ReviewError, match="missing.db: no such store file"):
        make_datasette(tmp_path / "missing.db")
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("hello")
    with pytest.raises(ReviewError, match="notes.db: not an intercept store \\(not an SQLite file"):
        make_datasette(not_sqlite)
    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["things"].insert({"a": 1})
    with pytest.raises(ReviewError, match=r"other.db: not an intercept store \(no intercept schema; tables: things"):
        make_datasette(other)


def test_accounts_need_hashes_not_passwords(tmp_path, store):
    with pytest.raises(ReviewError, match="password hash"):
        make_datasette(store, ReviewOptions(accounts={REVIEWER: "plaintext"}))
    accounts_file = tmp_path / "reviewers.yaml"
    good_hash = hash_password(PASSWORD, iterations=1000)
    accounts_file.write_text(f"{REVIEWER}: '{good_hash}'\n")
    assert load_accounts(accounts_file) == {REVIEWER: good_hash}
    accounts_file.write_text("- a list\n")
    with pytest.raises(ReviewError, match="reviewers.yaml: expected a mapping"):
        load_accounts(accounts_file)
    assert accounts_from_environ({"INTERCEPT_REVIEWER_MARYAM": good_hash, "HOME": "/root"}) == {"maryam": good_hash}


def test_plugin_registered_once(store):
    from datasette.plugins import pm

    from intercept.review import plugin

    make_datasette(store)
    make_datasette(store)
    assert sum(1 for registered in pm.get_plugins() if registered is plugin) == 1
