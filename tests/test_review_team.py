"""The review desk for a team: verdicts on flags (none on unflagged lines), withdrawal, disagreement
and a lead's decision, one confirmed set for the store, the page and the exports, notes, reviewer
flags kept through re-flagging, lexicon suggestions, claims and progress."""
from __future__ import annotations

import asyncio
import json
import random
import re

import pytest
import sqlite_utils

from test_review import FARSI_LINE, PASSWORD, RECORDING_S, REVIEWER, build_store, write_wav

from intercept.export import ExportOptions, export_text
from intercept.review import ReviewError, ReviewOptions, hash_password, load_accounts, load_leads, make_datasette
from intercept.store import CREATE, READ, Store
from intercept.store import team
from intercept.types import Flag, Line

LEAD = "leila"
OTHER = "ali"


@pytest.fixture()
def store(tmp_path):
    recording = tmp_path / "radio.wav"
    write_wav(recording, RECORDING_S)
    path = tmp_path / "store.db"
    build_store(path, recording)  # lines 1 (fox, bird), 2 (no flag), 3 (fox; ali: unsure, legacy), 4 (bird)
    return path


def outcome(store_path, line_id):
    with Store(store_path, READ) as opened:
        row = opened.rows("select verdict, confirmed, reviewers from line_review where line_id = ?", [line_id])
        return row[0] if row else None


# ---------------------------------------------------------------- the store's meaning


def test_unflagged_line_takes_no_verdict(store):
    with Store(store, CREATE) as opened:
        with pytest.raises(team.TeamError, match="line 2 has no flag"):
            opened.add_verdict(2, "confirmed", REVIEWER)
        with pytest.raises(team.TeamError, match="flag 12 is not a flag of line 1"):
            opened.add_verdict(1, "confirmed", REVIEWER, flag_id=12)
        assert opened.count("verdicts", "line_id = 2") == 0
        opened.db.execute("select 1")  # still usable


def test_verdict_on_one_flag_leaves_the_others_in_the_queue(store):
    with Store(store, CREATE) as opened:
        opened.add_verdict(1, "confirmed", REVIEWER, flag_id=10)  # fox; bird still awaits review
    assert outcome(store, 1) == {"verdict": None, "confirmed": 1, "reviewers": 1}
    with Store(store, CREATE) as opened:
        opened.add_verdict(1, "false_positive", REVIEWER, concept="bird")
    assert outcome(store, 1) == {"verdict": "confirmed", "confirmed": 1, "reviewers": 1}


def test_withdrawal_is_appended_and_puts_the_line_back_in_the_queue(store):
    with Store(store, CREATE) as opened:
        opened.add_verdict(4, "confirmed", REVIEWER, note="courier")
        assert opened.confirmed_line_ids() == {4}
        opened.add_verdict(4, "withdrawn", REVIEWER)
        history = opened.rows("select verdict, reviewer, withdraws from verdicts where line_id = 4 order by id")
        assert [row["verdict"] for row in history] == ["confirmed", "withdrawn"], "history kept"
        assert history[1]["withdraws"] is not None
        assert opened.confirmed_line_ids() == set()
        queue = opened.rows("select line_id from flagged_lines where verdict is null and score >= 0.5")
        assert 4 in {row["line_id"] for row in queue}
        with pytest.raises(team.TeamError, match="no standing verdict"):
            opened.add_verdict(4, "withdrawn", REVIEWER)
        with pytest.raises(team.TeamError, match="no standing verdict"):
            opened.add_verdict(4, "withdrawn", OTHER)


def test_reviewers_who_differ_dispute_the_line_until_a_lead_decides(store):
    with Store(store, CREATE) as opened:
        opened.add_verdict(4, "confirmed", REVIEWER, note="bird = courier")
        opened.add_verdict(4, "false_positive", OTHER, note="a real bird")
    assert outcome(store, 4) == {"verdict": "disputed", "confirmed": 0, "reviewers": 2}
    with Store(store, CREATE) as opened:
        review = opened.review_of_lines([4])[4]
        assert review["concepts"]["bird"]["differ"] == 1
        assert [(v["reviewer"], v["verdict"], v["note"]) for v in review["verdicts"]] == [
            (REVIEWER, "confirmed", "bird = courier"), (OTHER, "false_positive", "a real bird")]
        opened.add_verdict(4, "confirmed", LEAD, note="heard it twice", decision=True)
    assert outcome(store, 4)["verdict"] == "confirmed"
    with Store(store, CREATE) as opened:
        record = team.review_record(opened.review_of_lines([4])[4])
        assert record["concepts"]["bird"]["reviewers_differ"] and record["concepts"]["bird"]["decision"] == "confirmed"
        opened.add_verdict(4, "withdrawn", LEAD, decision=True)
    assert outcome(store, 4)["verdict"] == "disputed", "the decision withdrawn: disputed again"
    with Store(store, CREATE) as opened:
        opened.add_verdict(4, "confirmed", OTHER)  # the other reviewer comes round
    assert outcome(store, 4) == {"verdict": "confirmed", "confirmed": 1, "reviewers": 2}


def test_a_line_level_verdict_from_before_migration_0012_counts_for_every_flag(store):
    # build_store wrote ali's "unsure" on line 3 with no flag and no concept (the old desk).
    assert outcome(store, 3)["verdict"] == "unsure"
    db = sqlite_utils.Database(store)
    db["verdicts"].insert({"line_id": 1, "flag_id": 11, "verdict": "confirmed", "reviewer": "old", "at": "2024-01-01"})
    db.execute("update verdicts set concept = null where reviewer = 'old'")
    team.migrate(db)  # again, as on an older store: the flag's concept is filled in, line_review re-derived
    assert db.execute("select concept from verdicts where reviewer = 'old'").fetchone()[0] == "bird"
    assert db.execute("select confirmed from line_review where line_id = 1").fetchone()[0] == 1
    db.conn.close()


def test_reviewer_flag_survives_re_flagging_and_suggests_a_form(store):
    with Store(store, CREATE) as opened:
        made = opened.add_reviewer_flag(2, "fox", REVIEWER, note="said روباه under the noise", heard_form="روبا",
                                        suggest=True)
        flag = opened.rows("select * from flags where id = ?", [made["flag_id"]])[0]
        assert (flag["kind"], flag["flagged_by"], flag["category"]) == ("reviewer", REVIEWER, "animal-code")
        assert flag["flagged_at"] and flag["note"] == "said روباه under the noise"
        assert opened.confirmed_line_ids() >= {2}
        # Re-flagging line 2 (the lexicon finds nothing there) keeps the reviewer's flag.
        opened.save_derived([(2, Line(4.0, 6.0, "سلام", text_fa="سلام", text_en="hello"), [])], "test-2")
        assert opened.rows("select kind, concept from flags where line_id = 2") == [{"kind": "reviewer", "concept": "fox"}]
        opened.save_derived([(2, Line(4.0, 6.0, "سلام", text_fa="سلام", text_en="hello"),
                              [Flag("bird", "animal-code", "exact", 0.9, 0, 4, "سلام")])], "test-2")
        assert {row["kind"] for row in opened.rows("select kind from flags where line_id = 2")} == {"reviewer", "exact"}
        assert [(s["concept"], s["form"], s["status"]) for s in opened.lexicon_suggestions()] == [("fox", "روبا", "open")]
        with pytest.raises(team.TeamError, match="a reviewer flag needs a concept"):
            opened.add_reviewer_flag(2, " ", REVIEWER)
        with pytest.raises(team.TeamError, match="give the form as heard"):
            opened.add_reviewer_flag(2, "new-term", REVIEWER, suggest=True)


# ---------------------------------------------------------------- one confirmed set


def _export_ids(store_path, **options) -> set[int]:
    with Store(store_path, READ) as opened:
        text = export_text(opened, ExportOptions(format="jsonl", **options))
    return {json.loads(line)["line_id"] for line in text.splitlines()}


def test_confirmed_set_is_one_definition_for_store_page_and_export(store):
    # public_read: the page is read anonymously here (the doors are tests/test_hostile_server.py's)
    ds = make_datasette(store, ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)},
                                             secret="x", public_read=True))
    rng = random.Random(27)
    actions = [(line, flag) for line, flags in ((1, [10, 11, None]), (3, [12, None]), (4, [13, None]))
               for flag in flags]
    with Store(store, CREATE) as opened:
        opened.add_reviewer_flag(2, "wolf", "ana")
    for step in range(40):
        line, flag = rng.choice(actions)
        who = rng.choice([REVIEWER, OTHER, LEAD])
        verdict = rng.choice(team.VERDICTS + (team.WITHDRAWN,))
        with Store(store, CREATE) as opened:
            try:
                opened.add_verdict(line, verdict, who, flag_id=flag, decision=who == LEAD and rng.random() < 0.5)
            except team.TeamError:
                pass  # nothing of theirs to withdraw
        with Store(store, READ) as opened:
            from_store = opened.confirmed_line_ids()
        page = asyncio.run(ds.client.get("/store/confirmed_lines.json", params={"_shape": "array"}))
        from_page = {row["line_id"] for row in page.json()}
        assert from_store == from_page == _export_ids(store, confirmed_only=True), step
    assert from_store, "the random walk confirmed something"


def test_export_and_bundle_carry_the_disagreement(store):
    with Store(store, CREATE) as opened:
        opened.add_verdict(4, "confirmed", REVIEWER, note="courier")
        opened.add_verdict(4, "false_positive", OTHER)
        text = export_text(opened, ExportOptions(format="jsonl", flagged_only=True))
    rows = {json.loads(line)["line_id"]: json.loads(line) for line in text.splitlines()}
    review = rows[4]["review"]
    assert review["verdict"] == "disputed" and review["concepts"]["bird"]["reviewers_differ"]
    assert [(v["reviewer"], v["verdict"], v["note"]) for v in review["concepts"]["bird"]["verdicts"]] == [
        (REVIEWER, "confirmed", "courier"), (OTHER, "false_positive", None)]
    assert rows[1]["review"]["verdict"] is None


# ---------------------------------------------------------------- accounts


def test_accounts_file_gives_a_lead_role(tmp_path):
    digest = hash_password("x", iterations=1000)
    path = tmp_path / "accounts.yaml"
    path.write_text(f"maryam: '{digest}'\nleila:\n  password_hash: '{digest}'\n  role: lead\n")
    assert load_accounts(path) == {"maryam": digest, "leila": digest}
    assert load_leads(path) == {"leila"}
    path.write_text(f"leila:\n  password_hash: '{digest}'\n  role: boss\n")
    with pytest.raises(ReviewError, match="role must be one of reviewer, lead"):
        load_accounts(path)


# ---------------------------------------------------------------- through the server


def datasette(store_path, **options):
    """A review with three accounts. Reading is public here (these tests are about the team's
    desk; who may read is tests/test_hostile_server.py's), writing needs a login as always."""
    accounts = {name: hash_password(PASSWORD, iterations=1000) for name in (REVIEWER, OTHER, LEAD)}
    options.setdefault("public_read", True)
    return make_datasette(store_path, ReviewOptions(accounts=accounts, secret="team", leads=frozenset({LEAD}),
                                                    **options))


async def login(ds, name) -> dict:
    form = await ds.client.get("/-/login")
    token = form.cookies["ds_csrftoken"]
    response = await ds.client.post("/-/login", data={"username": name, "password": PASSWORD, "csrftoken": token},
                                    cookies={"ds_csrftoken": token})
    assert response.status_code == 302, response.text
    return {"ds_actor": response.cookies["ds_actor"], "ds_csrftoken": token}


async def post(ds, cookies, url, **data):
    return await ds.client.post(url, data={**data, "csrftoken": cookies["ds_csrftoken"]}, cookies=cookies)


def test_server_refuses_verdicts_on_unflagged_lines_and_decisions_by_reviewers(store):
    ds = datasette(store)

    async def scenario():
        maryam = await login(ds, REVIEWER)
        unflagged = await post(ds, maryam, "/-/intercept/verdict", line_id="2", verdict="confirmed")
        assert unflagged.status_code == 400 and "has no flag" in unflagged.text
        decided = await post(ds, maryam, "/-/intercept/verdict", line_id="4", verdict="confirmed", decision="1")
        assert decided.status_code == 403
        nothing = await post(ds, maryam, "/-/intercept/verdict", line_id="4", verdict="withdrawn")
        assert nothing.status_code == 400 and "no standing verdict" in nothing.text
        no_csrf = await ds.client.post("/-/intercept/note", data={"line_id": "2", "note": "x"}, cookies=maryam)
        assert no_csrf.status_code == 403
        anonymous = await ds.client.post("/-/intercept/note", data={"line_id": "2", "note": "x"})
        assert anonymous.status_code == 403
        # The timeline lists line 2 (no flag) with no verdict form and no verdict.
        timeline = await ds.client.get("/store/timeline", params={"recording_id": 1}, cookies=maryam)
        rows = re.findall(r"<tr>.*?</tr>", timeline.text, re.S)
        row2 = next(row for row in rows if 'data-line-id="2"' in row)
        assert "intercept-verdict" not in row2 and "awaiting review" not in row2
        assert "<title>Timeline of a recording · intercept review</title>" in timeline.text
        assert '<textarea' not in timeline.text or 'dir="auto"' in timeline.text

    asyncio.run(scenario())
    assert sqlite_utils.Database(store)["verdicts"].count == 1


def test_two_reviewers_disagree_and_the_lead_decides_through_the_server(store):
    ds = datasette(store)

    async def scenario():
        maryam, ali, leila = await login(ds, REVIEWER), await login(ds, OTHER), await login(ds, LEAD)
        saved = await post(ds, maryam, "/-/intercept/verdict", line_id="4", concept="bird", verdict="confirmed",
                           note="courier")
        assert saved.status_code == 200 and saved.json()["line_verdict"] == "confirmed"
        saved = await post(ds, ali, "/-/intercept/verdict", line_id="4", verdict="false_positive")
        assert saved.json()["line_verdict"] == "disputed"
        disputed = await ds.client.get("/-/intercept/queue?show=disputed", cookies=leila)
        assert re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', disputed.text) == ["4"]
        block = disputed.text[disputed.text.index('class="intercept-review" data-line-id="4"'):]
        assert "<b>maryam</b>: confirmed" in block and "courier" in block and "<b>ali</b>: false positive" in block
        assert 'name="decision" value="1"' in block, "the lead is offered the decision"
        as_reviewer = await ds.client.get("/-/intercept/queue?show=disputed", cookies=maryam)
        assert 'name="decision" value="1"' not in as_reviewer.text
        assert "withdraw my confirmed" in as_reviewer.text
        decided = await post(ds, leila, "/-/intercept/verdict", line_id="4", verdict="confirmed", decision="1")
        assert decided.json()["line_verdict"] == "confirmed"
        confirmed = await ds.client.get("/-/intercept/queue?show=confirmed")
        assert "(lead&#39;s decision)" in confirmed.text and "reviewers differed" in confirmed.text
        note = await post(ds, ali, "/-/intercept/note", line_id="2", note="یک صدای دیگر")
        assert note.status_code == 200
        context = await ds.client.get("/-/intercept/context/2")
        assert "یک صدای دیگر" in context.text

    asyncio.run(scenario())


def test_claims_keep_others_off_a_recording_and_lapse(store):
    ds = datasette(store)

    async def scenario():
        maryam, ali = await login(ds, REVIEWER), await login(ds, OTHER)
        claimed = await post(ds, maryam, "/-/intercept/claim", recording_id="1")
        assert claimed.status_code == 200
        refused = await post(ds, ali, "/-/intercept/claim", recording_id="1")
        assert refused.status_code == 400 and "claimed by maryam" in refused.text
        ali_queue = await ds.client.get("/-/intercept/queue", cookies=ali)
        assert re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', ali_queue.text) == ["4"]
        assert "claimed by others: maryam: recording 1" in ali_queue.text
        her_queue = await ds.client.get("/-/intercept/queue", cookies=maryam)
        assert re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', her_queue.text) == ["1", "4"]
        hour = await post(ds, ali, "/-/intercept/claim", hour="2019-11-12T21:00")
        assert hour.status_code == 200
        claim_id = claimed.json()["result"]
        wrong = await post(ds, ali, "/-/intercept/release", claim_id=str(claim_id))
        assert wrong.status_code == 400
        released = await post(ds, maryam, "/-/intercept/release", claim_id=str(claim_id))
        assert released.status_code == 200
        ali_queue = await ds.client.get("/-/intercept/queue", cookies=ali)
        assert re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', ali_queue.text) == ["1", "4"]

    asyncio.run(scenario())
    # A claim lapses after the idle time without a verdict or note.
    db = sqlite_utils.Database(store)
    db.execute("update claims set renewed_at = '2000-01-01T00:00:00+00:00'")
    db.conn.commit()
    assert team.open_claims(db.conn) == []
    db.conn.close()


def test_an_hour_claimed_by_another_leaves_that_hour_of_traffic_out_of_the_queue(store):
    # Recording 1 was made at 21:59:59 UTC: its line 1 (+1.0 s) falls in the hour 22, its line 3
    # (+7.0 s) too; recording 2 has no time, so no hour claim can reach its line 4.
    db = sqlite_utils.Database(store)
    db.execute("update recordings set recorded_at = '2019-11-12T21:59:59+00:00' where id = 1")
    db.conn.commit()
    db.conn.close()
    ds = datasette(store)

    async def scenario():
        maryam, ali = await login(ds, REVIEWER), await login(ds, OTHER)
        ids = r'<div class="intercept-item[^"]*" data-line-id="(\d+)"'
        assert re.findall(ids, (await ds.client.get("/-/intercept/queue", cookies=maryam)).text) == ["1", "4"]
        other_hour = await post(ds, ali, "/-/intercept/claim", hour="2019-11-12T21:00")
        assert other_hour.status_code == 200
        assert re.findall(ids, (await ds.client.get("/-/intercept/queue", cookies=maryam)).text) == ["1", "4"]
        claimed = await post(ds, ali, "/-/intercept/claim", hour="2019-11-12T22:30")
        assert claimed.status_code == 200
        her_queue = await ds.client.get("/-/intercept/queue", cookies=maryam)
        assert re.findall(ids, her_queue.text) == ["4"]
        assert "claimed by others: " in her_queue.text and "ali: hour 2019-11-12T22" in her_queue.text
        assert re.findall(ids, (await ds.client.get("/-/intercept/queue", cookies=ali)).text) == ["1", "4"]

    asyncio.run(scenario())


def test_progress_counts_lines_not_rows(store):
    with Store(store, CREATE) as opened:
        opened.add_verdict(1, "confirmed", REVIEWER)  # two rows: fox and bird
        opened.add_verdict(1, "withdrawn", REVIEWER)
        opened.add_verdict(1, "unsure", REVIEWER)
        opened.add_verdict(4, "confirmed", OTHER)
        figures = team.progress(opened.db.conn)
        mine = team.progress(opened.db.conn, REVIEWER)
        per_reviewer = opened.rows("select reviewer, count(*) as lines from reviewer_lines group by reviewer "
                                   "order by reviewer")
    assert (mine["reviewed"], mine["reviewed_today"]) == (1, 1)
    assert (figures["reviewed"], figures["remaining"], figures["disputed"], figures["flagged"]) == (3, 0, 0, 3)
    assert {r["reviewer"]: r["lines"] for r in figures["reviewers"]} == {"ali": 2, "maryam": 1}
    assert per_reviewer == [{"reviewer": "ali", "lines": 2}, {"reviewer": "maryam", "lines": 1}]
    ds = datasette(store)
    page = asyncio.run(ds.client.get("/-/intercept/progress"))
    assert page.status_code == 200 and "<title>Progress of the review · intercept review</title>" in page.text
    assert re.search(r'data-figure="reviewed in all"><dt>[^<]*</dt><dd>3</dd>', page.text)
    facet = asyncio.run(ds.client.get("/store/reviewer_lines.json", params={"_facet": "reviewer"})).json()
    counts = {v["value"]: v["count"] for v in facet["facet_results"]["reviewer"]["results"]}
    assert counts == {"ali": 2, "maryam": 1}, "distinct lines per reviewer, not verdict rows"


def test_every_intercept_page_has_the_top_menu(store):
    ds = datasette(store)
    for url in ("/-/intercept/queue", "/-/intercept/progress", "/-/intercept/context/1", "/store/flagged_lines",
                "/store/timeline?recording_id=1", "/-/intercept/activity", "/-/intercept/exports",
                "/-/intercept/suggestions", "/-/intercept/timeline"):
        page = asyncio.run(ds.client.get(url))
        assert page.status_code == 200, url
        menu = re.search(r'<span class="intercept-menu">(.*?)</span>', page.text, re.S)
        assert menu, url
        labels = re.findall(r">([^<]+)</a>", menu.group(1))
        assert labels == ["Queue", "Disputed", "Timeline", "Activity", "Voices", "Verdicts", "Progress", "Exports",
                          "Table"], url


def test_lexicon_suggestions_command_lists_what_reviewers_proposed(store):
    from click.testing import CliRunner

    from intercept.cli import cli

    with Store(store, CREATE) as opened:
        opened.add_reviewer_flag(2, "fox", REVIEWER, note="heard twice", heard_form="روبا", suggest=True)
        opened.add_reviewer_flag(2, "wolf", REVIEWER, heard_form="گرگه")  # heard, not proposed
    result = CliRunner().invoke(cli, ["lexicon", "suggestions", str(store), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["concept"], r["form"], r["suggested_by"], r["line_id"]) for r in rows] == [("fox", "روبا", REVIEWER, 2)]
    with Store(store, READ) as opened:
        assert opened.count("lexicon_terms", "form = ?", ["روبا"]) == 0, "never applied"


def test_flag_evaluation_counts_reviewer_flags_in_recall(store):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("eval_flags_store", Path(__file__).parent.parent / "scripts" / "eval_flags_store.py")
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["eval_flags_store"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    # Truth: line 2 ("سلام" at 4.0 s) is coded talk about wolf; line 4 about bird.
    truth = {("radio.wav", 4.0): {"wolf"}, ("gone.wav", 0.5): {"bird"}}
    with Store(store, READ) as opened:
        before = module.evaluate(opened, truth)
    assert (before["lexicon"].wanted, before["lexicon"].found) == (2, 1)
    with Store(store, CREATE) as opened:
        opened.add_reviewer_flag(2, "wolf", REVIEWER)
    with Store(store, READ) as opened:
        after = module.evaluate(opened, truth)
    assert (after["lexicon"].found, after["lexicon and reviewers"].found) == (1, 2)
    assert after["lexicon and reviewers"].recall == 1.0


# ---------------------------------------------------------------- search


def test_search_finds_inflected_forms_accepts_or_and_plays_audio(store):
    db = sqlite_utils.Database(store)
    db["lines"].update(2, {"text_fa": "پرنده‌ها آمدند"})  # plural, with ZWNJ
    db["lines"].update(3, {"text_fa": "کتابم را آوردی"})  # attached pronoun
    db.conn.close()
    ds = datasette(store)

    def found(query):
        page = asyncio.run(ds.client.get("/-/intercept/search", params={"q": query}))
        assert page.status_code == 200
        return sorted(int(i) for i in re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', page.text)), page

    assert found("پرنده‌ها")[0] == [1, 2, 4], "the plural finds the singular (lines 1, 4) and itself (2)"
    assert found("پرنده ها")[0] == [1, 2, 4], "a space instead of the ZWNJ"
    assert found("پرنده‌ی")[0] == [1, 2, 4], "ezafe"
    assert found("كتاب")[0] == [3], "Arabic kaf typed; کتابم (my book) found"
    assert found("روباه OR کتاب")[0] == [1, 3]
    assert found("روباه پرنده")[0] == [1], "both words"
    assert found("fox | hello")[0] == [1, 2, 3]
    ids, page = found("پرنده")
    assert 'src="/-/intercept/audio/2.wav"' in page.text, "results play their audio"
    assert 'name="q" dir="auto"' in page.text
    assert found('"; drop table lines; --')[0] == []


def test_team_writes_refuse_a_wrong_form_by_name_and_pass_a_reviewer_flag_whole(store):
    """The note, reviewer-flag, claim and release routes: a wrong field is a 400 naming it and
    writes nothing; a reviewer flag posted from the desk keeps its heard form and proposal."""
    ds = datasette(store)

    async def scenario():
        maryam = await login(ds, REVIEWER)
        for url, data, says in [
            ("/-/intercept/note", {"line_id": "two", "note": "x"}, "line_id must be an integer"),
            ("/-/intercept/note", {"note": "x"}, "give line_id"),
            ("/-/intercept/note", {"line_id": "2", "note": "x" * 4001}, "a note of at most 4000 characters"),
            ("/-/intercept/reviewer-flag", {"line_id": "2", "concept": "fox", "suggest": "1"}, "give the form as heard"),
            ("/-/intercept/claim", {"recording_id": "1.5"}, "recording_id must be an integer"),
            ("/-/intercept/release", {}, "give claim_id"),
        ]:
            refused = await post(ds, maryam, url, **data)
            assert refused.status_code == 400 and says in refused.text, (url, data, refused.text)
        made = await post(ds, maryam, "/-/intercept/reviewer-flag", line_id="2", concept="fox", note=" heard it ",
                          heard_form="روبا", suggest="1")
        assert made.status_code == 200, made.text
        return made.json()["result"]

    made = asyncio.run(scenario())
    with Store(store, READ) as opened:
        assert opened.rows("select count(*) as n from line_notes")[0]["n"] == 0
        flag = opened.rows("select kind, concept, flagged_by, note from flags where id = ?", [made["flag_id"]])[0]
        assert flag == {"kind": "reviewer", "concept": "fox", "flagged_by": REVIEWER, "note": "heard it"}
        suggested = opened.rows("select form, suggested_by from lexicon_suggestions")
        assert suggested == [{"form": "روبا", "suggested_by": REVIEWER}]
