"""The voices part of the review UI (intercept/review/voices.py): pages, reviewers' name /
merge / split, the voice facet and filter on flagged lines, and the line -> voice look-up.

The store is test_review's, with two transmissions in two recordings; their voices come from
the real grouping code (intercept.voices.group_voices) over two orthogonal embeddings, so
these tests need no voice encoder."""
from __future__ import annotations

import numpy as np
import pytest

from intercept.review import ReviewOptions, hash_password, make_datasette
from intercept.store import CREATE, Store
from intercept.voices import group_voices, to_bytes
from test_review import PASSWORD, RECORDING_S, REVIEWER, build_store, login, run, write_wav

MODEL = ("test-encoder", "1")


@pytest.fixture()
def store(tmp_path):
    recording = tmp_path / "radio.wav"
    write_wav(recording, RECORDING_S)
    db_path = tmp_path / "store.db"
    build_store(db_path, recording)
    with Store(db_path, CREATE) as store:
        for recording_id, direction in ((1, 0), (2, 1)):
            vector = np.eye(256, dtype=np.float32)[direction]
            store.save_voice_prints(recording_id, {0: ("ok", 2.0, to_bytes(vector))}, *MODEL)
        group_voices(store, *MODEL, threshold=0.8)
    return db_path


@pytest.fixture()
def ds(store):
    accounts = {REVIEWER: hash_password(PASSWORD, iterations=1000)}
    # public_read: these tests read anonymously; tests/test_hostile_server.py tests the doors.
    return make_datasette(store, ReviewOptions(accounts=accounts, secret="test-secret", public_read=True))


def voice_of(db_path, transmission_id):
    with Store(db_path, CREATE) as store:
        return store.rows("SELECT voice_id FROM transmissions WHERE id = ?", [transmission_id])[0]["voice_id"]


def test_voices_pages_list_voices_and_their_transmissions(ds, store):
    first = voice_of(store, 1)
    page = run(ds.client.get("/-/intercept/voices"))
    assert page.status_code == 200
    assert f"/-/intercept/voices/{first}" in page.text and "radio.wav" not in page.text
    voice = run(ds.client.get(f"/-/intercept/voices/{first}"))
    assert voice.status_code == 200
    assert "radio.wav" in voice.text and "/-/intercept/audio/1.wav" in voice.text
    assert "Log in" in voice.text and 'action="/-/intercept/voices' not in voice.text  # no forms for visitors
    assert run(ds.client.get("/-/intercept/voices/999")).status_code == 404


def test_flagged_lines_have_a_voice_facet_and_filter(ds, store):
    first, second = voice_of(store, 1), voice_of(store, 2)
    page = run(ds.client.get("/store/flagged_lines.json", params={"_extra": "facet_results"})).json()
    facet = page["facet_results"]["results"]["voice"]["results"] if "results" in page["facet_results"] \
        else page["facet_results"]["voice"]["results"]
    assert {(f["value"], f["count"]) for f in facet} == {(str(first), 2), (str(second), 1)}
    rows = run(ds.client.get("/store/flagged_lines.json", params={"_voice": first, "_shape": "array"})).json()
    assert sorted(r["line_id"] for r in rows) == [1, 3]
    html_page = run(ds.client.get("/store/flagged_lines"))
    assert "/-/intercept/static/voices.js" in html_page.text


def test_lines_link_to_their_voice(ds, store):
    found = run(ds.client.get("/-/intercept/voices/lines.json", params={"ids": "1,3,4,99"})).json()
    assert set(found) == {"1", "3", "4"}
    assert found["4"]["url"] == f"/-/intercept/voices/{voice_of(store, 2)}"
    assert run(ds.client.get("/-/intercept/voices/lines.json", params={"ids": "x"})).status_code == 400


def test_visitors_cannot_change_voices(ds, store):
    response = run(ds.client.post(f"/-/intercept/voices/{voice_of(store, 1)}/name", data={"name": "x"}))
    assert response.status_code == 403
    with Store(store, CREATE) as opened:
        assert opened.voice_decisions() == []


def test_reviewer_names_merges_and_splits(ds, store):
    first, second = voice_of(store, 1), voice_of(store, 2)

    async def act():
        cookies = await login(ds)
        token = {"csrftoken": cookies["ds_csrftoken"]}
        named = await ds.client.post(f"/-/intercept/voices/{first}/name", data={**token, "name": " operator  A "},
                                     cookies=cookies)
        merged = await ds.client.post(f"/-/intercept/voices/{second}/merge", data={**token, "into": str(first)},
                                      cookies=cookies)
        split = await ds.client.post(f"/-/intercept/voices/{first}/split",
                                     data={**token, "transmission_id": "2", "name": "visitor"}, cookies=cookies)
        wrong = await ds.client.post(f"/-/intercept/voices/{first}/split", data={**token, "transmission_id": "2"},
                                     cookies=cookies)
        page = await ds.client.get(f"/-/intercept/voices/{first}", cookies=cookies)
        return named, merged, split, wrong, page

    named, merged, split, wrong, page = run(act())
    assert named.status_code == merged.status_code == split.status_code == 302
    assert wrong.status_code == 400 and "not of voice" in wrong.text
    assert 'action="/-/intercept/voices/' in page.text and "operator A" in page.text
    with Store(store, CREATE) as opened:
        assert opened.voice(first)["name"] == "operator A" and opened.voice(first)["named_by"] == REVIEWER
        assert opened.voice(second)["merged_into"] == first
        new = opened.rows("SELECT voice_id FROM transmissions WHERE id = 2")[0]["voice_id"]
        assert new not in (first, second) and opened.voice(new)["name"] == "visitor"
        assert split.headers["location"] == f"/-/intercept/voices/{new}"
        decisions = opened.voice_decisions()
        assert [(d["action"], d["reviewer"]) for d in decisions] == [("name", REVIEWER), ("merge", REVIEWER),
                                                                      ("split", REVIEWER)]
        assert opened.voice(first)["n"] == 1 and opened.voice(new)["n"] == 1  # centroids follow
