"""Corrections through the review server (intercept/review/corrections.py): logged-in reviewers
only, behind the CSRF check, the reviewer from the login, bad input refused, a correction made
meanwhile refused (409), revisions.json, and the correct-next page."""
from __future__ import annotations

import pytest
import sqlite_utils

from test_review import ds, login, run, store  # noqa: F401 (fixtures)

FOX = "امشب گرگ می‌آید"


def _post(ds, data, cookies=None):  # noqa: F811
    return ds.client.post("/-/intercept/correct", data=data, cookies=cookies or {})


def test_a_logged_in_reviewer_corrects_a_line(ds, store):  # noqa: F811
    async def scenario():
        cookies = await login(ds)
        page = await ds.client.get("/store/flagged_lines", cookies=cookies)
        assert "corrections.js" in page.text and '"correctUrl": "/-/intercept/correct"' in page.text
        response = await _post(ds, {"line_id": "1", "text_fa": FOX, "text_en": "The wolf comes tonight",
                                    "reviewer": "someone-else", "note": "heard twice",
                                    "csrftoken": cookies["ds_csrftoken"]}, cookies)
        history = await ds.client.get("/-/intercept/revisions.json?ids=1,2")
        return response, history

    response, history = run(scenario())
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["reviewer"] == "maryam" and saved["text_en_from"] == "reviewer"
    assert "wolf" in {f["concept"] for f in saved["flags"]}
    db = sqlite_utils.Database(store)
    line = db["lines"].get(1)
    assert line["text_en"] == "The wolf comes tonight" and line["revision_id"] == saved["revision_id"]
    assert [r["reviewer"] for r in db["line_revisions"].rows] == ["maryam"], "the reviewer comes from the login"
    flags = list(db.query("SELECT concept, source, superseded_by_revision FROM flags WHERE line_id = 1"))
    assert {(f["concept"], f["superseded_by_revision"]) for f in flags if f["source"] is None} == {
        ("fox", saved["revision_id"]), ("bird", saved["revision_id"])}
    assert "wolf" in {f["concept"] for f in flags if f["source"] == "reviewer_text"}
    # the lexicon version the desk flagged with is explained in lexicon_terms
    version = db.execute("SELECT lexicon_version FROM flags WHERE source = 'reviewer_text'").fetchone()[0]
    assert db["lexicon_terms"].count_where("lexicon_version = ?", [version])
    lines = history.json()
    assert lines["1"]["history"][0]["note"] == "heard twice" and lines["1"]["text_fa_machine"].startswith("امشب")
    assert lines["2"]["history"] == [] and lines["2"]["revision_id"] is None


@pytest.mark.parametrize("form, status, message", [
    ({"line_id": "1", "text_fa": "  "}, 400, "empty"),
    ({"line_id": "x", "text_fa": FOX}, 400, "integers"),
    ({"line_id": "99", "text_fa": FOX}, 404, "no line 99"),
    ({"line_id": "1", "text_fa": FOX, "replaces": "7"}, 409, "meanwhile"),
])
def test_bad_corrections_are_refused(ds, store, form, status, message):  # noqa: F811
    async def scenario():
        cookies = await login(ds)
        return await _post(ds, {**form, "csrftoken": cookies["ds_csrftoken"]}, cookies)

    response = run(scenario())
    assert response.status_code == status and message in response.text, response.text
    assert not sqlite_utils.Database(store)["line_revisions"].count


def test_corrections_need_a_login_and_the_csrf_token(ds, store):  # noqa: F811
    async def scenario():
        anonymous = await _post(ds, {"line_id": "1", "text_fa": FOX})
        cookies = await login(ds)
        no_token = await _post(ds, {"line_id": "1", "text_fa": FOX}, cookies)
        return anonymous, no_token

    anonymous, no_token = run(scenario())
    assert anonymous.status_code == 403 and no_token.status_code == 403
    assert not sqlite_utils.Database(store)["line_revisions"].count


def test_correct_next_lists_doubtful_lines(ds, store):  # noqa: F811
    from intercept.scoring import DEFAULT_THRESHOLD

    db = sqlite_utils.Database(store)
    db.execute("UPDATE flags SET kind = 'fuzzy', score = ? WHERE id = 13", [DEFAULT_THRESHOLD])  # line 4: doubtful
    db.execute("INSERT INTO verdicts (line_id, verdict, reviewer, at) VALUES (1, 'confirmed', 'ali', '2024-01-03')")
    db.execute("UPDATE lines SET confidence = 0.2 WHERE id = 2")  # beside confirmed line 1, weakly recognised
    db.conn.commit()

    async def scenario():
        return await ds.client.get("/-/intercept/correct-next")

    page = run(scenario())
    assert page.status_code == 200, page.text
    body = page.text
    ranked = [int(part.split('"')[0]) for part in body.split('class="intercept-item" data-line-id="')[1:]]
    # line 4's flag sits on the threshold (1.0); line 2: a confirmed line near (0.5) and weak recognition;
    # line 3: a confirmed line near (0.5); line 1 itself is confirmed, with no doubtful flag
    assert ranked == [2, 4, 3], ranked
