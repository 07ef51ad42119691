"""The review plugin acts on intercept stores only: a plain database served by the same
Datasette (the plugin is installed for every Datasette on the machine) is plain Datasette."""
from __future__ import annotations

import asyncio
import hashlib

import pytest
import sqlite_utils

from intercept.review import ReviewOptions, metadata_for
from intercept.review import _register_plugin as register_plugin
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Flag, Line, Transmission

ARABIC_YEH = "زيرنويس"  # as an Arabic keyboard types it; the normaliser makes it زیرنویس


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def databases(tmp_path):
    store = tmp_path / "store.db"
    with Store(store, CREATE) as s:
        lines = [Line(0.0, 1.0, "پرنده آمد", text_fa="پرنده آمد", text_en="the bird came")]
        s.save_recording(RecordingFacts(path=str(tmp_path / "a.wav"), sha256="a" * 64), [Transmission(0, 0.0, 1.0)],
                         lines, [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")]],
                         run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
    plain = tmp_path / "plain.db"
    db = sqlite_utils.Database(plain)
    # Table and column names the plugin knows from stores, in a database that is not one.
    db["lines"].insert_all([{"id": 1, "text_fa": ARABIC_YEH, "verdict": None},
                            {"id": 2, "text_fa": "سلام", "verdict": None}], pk="id")
    db["lines"].enable_fts(["text_fa"])
    db.close()
    return store, plain


def _datasette(files, metadata=None):
    from datasette.app import Datasette

    register_plugin()
    return Datasette(files=[str(f) for f in files], metadata=metadata or {})


@pytest.mark.parametrize("configured", [True, False], ids=["intercept-review", "plugin-installed-anywhere"])
def test_a_plain_database_beside_a_store_is_plain_datasette(databases, configured):
    store, plain = databases
    ds = _datasette([store, plain], metadata_for("store", ReviewOptions()) if configured else None)
    before = hashlib.sha256(plain.read_bytes()).hexdigest()

    page = run(ds.client.get("/plain/lines"))
    assert page.status_code == 200
    assert "intercept-audio" not in page.text and "intercept-fa" not in page.text
    for script in ("review.js", "voices.js", "corrections.js"):  # each plugin's JavaScript
        assert f"/-/intercept/static/{script}" not in page.text

    # Search is left as typed: the Arabic spelling finds its row, as in any Datasette.
    found = run(ds.client.get("/plain/lines.json", params={"_search": ARABIC_YEH, "_shape": "array"}))
    assert [row["id"] for row in found.json()] == [1]

    # The flag filters and facet belong to stores: here they filter nothing (no flags table).
    filtered = run(ds.client.get("/plain/lines.json", params={"_flag_concept": "bird", "_shape": "array"}))
    assert filtered.status_code == 200 and len(filtered.json()) == 2
    faceted = run(ds.client.get("/plain/lines.json", params={"_facet_flag": "concept"}))
    assert faceted.status_code == 200 and faceted.json()["facet_results"] == {}

    # The store itself still gets all of it.
    store_page = run(ds.client.get("/store/lines"))
    assert "intercept-fa" in store_page.text
    for script in ("review.js", "voices.js", "corrections.js"):
        assert f"/-/intercept/static/{script}" in store_page.text
    flagged = run(ds.client.get("/store/lines.json", params={"_flag_concept": "bird", "_shape": "array"}))
    assert [row["id"] for row in flagged.json()] == [1]
    none = run(ds.client.get("/store/lines.json", params={"_flag_concept": "fox", "_shape": "array"}))
    assert none.json() == []
    assert hashlib.sha256(plain.read_bytes()).hexdigest() == before


def test_store_detection_is_asked_once_per_database(databases, monkeypatch):
    from intercept.review import site

    store, plain = databases
    ds = _datasette([store, plain])
    calls = []
    real = site.is_store_connection
    monkeypatch.setattr(site, "is_store_connection", lambda conn: calls.append(1) or real(conn))
    for _ in range(3):
        run(ds.client.get("/plain/lines"))
        run(ds.client.get("/store/lines"))
    assert run(site.is_store(ds, "store")) and not run(site.is_store(ds, "plain"))
    assert len(calls) <= 2  # the startup hook may have asked before the patch


def test_the_voice_filter_belongs_to_stores(databases, tmp_path):
    """?_voice= on a plain database's flagged_lines filters nothing (it used to put the store's
    voice query into any database's table and fail on its missing tables)."""
    store, _ = databases
    plain = tmp_path / "other.db"
    db = sqlite_utils.Database(plain)
    db["flagged_lines"].insert_all([{"line_id": 1, "verdict": None}, {"line_id": 2, "verdict": None}], pk="line_id")
    db.close()
    ds = _datasette([store, plain])
    page = run(ds.client.get("/other/flagged_lines.json", params={"_voice": "1", "_shape": "array"}))
    assert page.status_code == 200 and [row["line_id"] for row in page.json()] == [1, 2]
    # The store's own flagged_lines takes the filter (its one line has no voice).
    voiced = run(ds.client.get("/store/flagged_lines.json", params={"_voice": "1", "_shape": "array"}))
    assert voiced.status_code == 200 and voiced.json() == []
