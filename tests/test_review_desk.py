"""The reviewer's desk through Datasette's test client: flagged words marked from the stored
spans, gloss and notes, trust (with and without the flag-evidence columns), unreliable English,
context around a line, traffic over time."""
from __future__ import annotations

import asyncio
import json
import math
import re

import pytest
import sqlite_utils

from test_review import FARSI_LINE, PASSWORD, RECORDING_S, REVIEWER, build_store, write_wav

from intercept.reliability import WEAK_CONFIDENCE, WEAK_LOGPROB, english_reliability, line_confidence
from intercept.review import ReviewOptions, hash_password, make_datasette
from intercept.review.desk import describe_line, flags_html, marked_html, trust_html
from intercept.store import CREATE, Store

ENGLISH = "tonight let's go see whether it is a bird or a fox"
HYPOTHESIS = "امشب برویم ببینیم پرنده است یا روباه"


def desk_store(tmp_path, evidence: bool = False):
    """test_review's store with real spans, an English and an alternative flag, lexicon notes,
    a recording time, and (evidence=True) the flag-evidence columns of the flag-trust migration."""
    recording = tmp_path / "radio.wav"
    write_wav(recording, RECORDING_S)
    path = tmp_path / "store.db"
    build_store(path, recording)
    Store(path, CREATE).close()  # migrations up to this branch's (recorded_at, lexicon notes)
    db = sqlite_utils.Database(path)
    fox, bird = FARSI_LINE.index("روباه"), FARSI_LINE.index("پرنده")
    db["flags"].update(10, {"span_start": fox, "span_end": fox + 5})
    db["flags"].update(11, {"span_start": bird, "span_end": bird + 5})
    db["flags"].update(12, {"span_start": 0, "span_end": 5})
    # The flag-evidence columns (migration 0005_flag_evidence) where this branch's store lacks them.
    for table, column, kind in [("flags", "match_score", float), ("flags", "word_prob", float),
                                ("flags", "nbest_share", float), ("flags", "prior", float),
                                ("flags", "acoustic_margin", float),
                                ("flags", "hypothesis", str), ("lines", "confidence", float)]:
        if column not in db[table].columns_dict:
            db[table].add_column(column, kind)
    if evidence:
        db["flags"].update(10, {"score": 0.81, "match_score": 1.0, "word_prob": 0.62, "nbest_share": 0.4,
                                "acoustic_margin": -3.25, "prior": 0.25, "prior_reason": "sound_alike: گفتار"})
        db["lines"].update(1, {"confidence": 0.2})  # weak: its English is unreliable
    english_start = ENGLISH.index("fox")
    db["flags"].insert_all([
        {"id": 14, "line_id": 1, "concept": "fox", "category": "animal-code", "severity": "high", "kind": "english",
         "score": 0.6, "span_start": english_start, "span_end": english_start + 3, "matched": "fox", "term": "fox",
         "lexicon_version": "test-1"},
        {"id": 15, "line_id": 4, "concept": "fox", "category": "animal-code", "severity": "high", "kind": "alternative",
         "score": 0.5, "span_start": HYPOTHESIS.index("روباه"), "span_end": HYPOTHESIS.index("روباه") + 5,
         "matched": "روباه", "term": "روباه", "lexicon_version": "test-1", "hypothesis": HYPOTHESIS},
    ])
    db["lines"].update(1, {"text_en": ENGLISH})
    db["lexicon_terms"].update(1, {"notes": "Code word in the source, paired with bird."})
    db["lexicon_terms"].insert({"concept": "fox", "category": "animal-code", "severity": "high", "form": "fox",
                                "lang": "en", "lexicon_version": "test-1"})
    db["recordings"].update(1, {"recorded_at": "2019-11-12T21:30:45+00:00"})
    db["recordings"].update(2, {"recorded_at": "2019-11-13T08:00:00+00:00"})
    db.conn.close()
    return path


def datasette_for(path):
    return make_datasette(path, ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)},
                                              secret="desk-test", public_read=True))


def get(ds, url):
    return asyncio.run(ds.client.get(url))


def marks(fragment: str) -> list[tuple[str, str]]:
    return re.findall(r'<mark class="intercept-mark" data-flag-ids="([^"]+)"[^>]*>([^<]*)</mark>', fragment)


# ---------------------------------------------------------------- marking


def test_marked_html_marks_each_span_escapes_and_merges_overlaps():
    text = "a <b> fox and a bird"
    flags = [{"id": 1, "concept": "fox", "category": "c", "kind": "exact", "span_start": 6, "span_end": 9},
             {"id": 2, "concept": "bird", "category": "c", "kind": "exact", "span_start": 16, "span_end": 20},
             {"id": 3, "concept": "fox2", "category": "c", "kind": "fuzzy", "span_start": 7, "span_end": 13},
             {"id": 4, "concept": "out", "category": "c", "kind": "exact", "span_start": 18, "span_end": 99}]
    html = str(marked_html(text, flags))
    assert marks(html) == [("1 3", "fox and"), ("2", "bird")]
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_flagged_words_marked_in_farsi_english_and_alternative(tmp_path):
    ds = datasette_for(desk_store(tmp_path))
    lines = get(ds, "/-/intercept/lines.json?ids=1,4").json()
    assert marks(lines["1"]["fa"]) == [("11", "پرنده"), ("10", "روباه")]
    assert marks(lines["1"]["en"]) == [("14", "fox")]
    assert 'dir="rtl"' in lines["1"]["fa"]
    # Line 4: an exact flag (span 0-5 of "پرنده") and an alternative heard in the n-best.
    assert marks(lines["4"]["fa"].split("heard as alternative")[0]) == [("13", "پرنده")]
    alternative = lines["4"]["fa"].split("heard as alternative")[1]
    assert marks(alternative) == [("15", "روباه")]
    # Concept, gloss and notes on hover (title) and beside (the flag list).
    assert "gloss: fox" in lines["1"]["flags"] and "paired with bird" in lines["1"]["flags"]
    fox_mark = re.search(r'<mark[^>]*data-flag-ids="10"[^>]*title="([^"]*)"', lines["1"]["fa"]).group(1)
    assert "fox (animal-code)" in fox_mark and "gloss: fox" in fox_mark


# ---------------------------------------------------------------- trust


def test_trust_unknown_before_flag_evidence_and_confidence_from_logprob():
    """A store from before the flag-evidence migration: flags.score is the text match, trust
    unknown; the line's confidence comes from avg_logprob."""
    line = {"id": 1, "text_fa": "روباه", "text_en": "fox", "avg_logprob": -0.3}
    flag = {"id": 10, "concept": "fox", "category": "animal", "kind": "exact", "score": 1.0,
            "span_start": 0, "span_end": 5}
    described = describe_line(line, [flag], has_trust=False)
    assert f"{math.exp(-0.3):.2f} (exp(avg_logprob))" in str(trust_html(described))
    assert ("match score 1.00 · trust unknown · word probability unknown · n-best share unknown · "
            "acoustic margin unknown · lexicon prior unknown") in str(flags_html(described))
    assert described["reliability"] == "reliable"
    bare = describe_line({"id": 2, "text_fa": "", "text_en": "hello"}, [], has_trust=False)
    assert "unknown" in str(trust_html(bare)) and bare["reliability"] == "unknown"


def test_a_greedy_lines_nbest_share_is_not_shown_as_agreement():
    """A line decoded greedily stores one hypothesis: its flags' N-best share of 1 is shown as
    that, not as 1.00; a line with a 5-best shows the number."""
    flag = {"id": 10, "concept": "fox", "category": "animal", "kind": "exact", "score": 0.4, "match_score": 1.0,
            "word_prob": 0.8, "nbest_share": 1.0, "acoustic_margin": 0.0, "prior": 0.5, "span_start": 0, "span_end": 5}
    one = [["روباه", -0.2, 10]]
    greedy = describe_line({"id": 1, "text_fa": "روباه", "text_en": "fox", "alternatives": json.dumps(one)},
                           [flag], has_trust=True)
    assert "n-best share none (one hypothesis)" in str(flags_html(greedy))
    five = json.dumps(one * 5)
    beam = describe_line({"id": 1, "text_fa": "روباه", "text_en": "fox", "alternatives": five}, [flag], has_trust=True)
    assert "n-best share 1.00" in str(flags_html(beam))


def test_guard_marked_english_is_muted_and_labelled(tmp_path):
    ds = datasette_for(desk_store(tmp_path))
    line = get(ds, "/-/intercept/lines.json?ids=3").json()["3"]
    assert line["reliability"] == "unreliable"
    assert "intercept-en-unreliable" in line["en"] and ">unreliable</span>" in line["en"]
    assert "repetition" in line["en"]


def test_trust_from_flag_evidence_and_line_confidence(tmp_path):
    ds = datasette_for(desk_store(tmp_path, evidence=True))
    line = get(ds, "/-/intercept/lines.json?ids=1").json()["1"]
    assert "0.20 (mean word probability)" in line["trust"]
    assert ("match score 1.00 · trust 0.81 · word probability 0.62 · n-best share 0.40 · acoustic margin -3.25 · "
            "lexicon prior 0.25"
            in line["flags"])
    assert "prior 0.25: sound_alike: گفتار" in line["fa"]  # the reason, on the flagged words' mark
    assert line["reliability"] == "unreliable" and "weak recognition" in line["en"]


def test_one_reliability_rule():
    assert line_confidence({"avg_logprob": -0.5}) == pytest.approx(math.exp(-0.5))
    assert line_confidence({"avg_logprob": -0.5, "confidence": 0.9}) == 0.9
    assert line_confidence({}) is None
    assert english_reliability({"text_en": ""}) is None
    assert english_reliability({"text_en": "x"}).label == "unknown"
    assert english_reliability({"text_en": "x", "confidence": WEAK_CONFIDENCE - 0.01}).label == "unreliable"
    assert english_reliability({"text_en": "x", "confidence": WEAK_CONFIDENCE + 0.01}).label == "reliable"
    assert english_reliability({"text_en": "x", "confidence": 0.99, "suspect": "too fast"}).label == "unreliable"
    # Without word probabilities, exp(avg_logprob) is judged against Whisper's own level (-1).
    assert english_reliability({"text_en": "x", "avg_logprob": WEAK_LOGPROB + 0.1}).label == "reliable"
    assert english_reliability({"text_en": "x", "avg_logprob": WEAK_LOGPROB - 0.1}).label == "unreliable"
    # The example: fluent English over garbled Farsi recognised at 0.45 is unreliable.
    assert english_reliability({"text_en": "I will not let you down", "confidence": 0.45}).label == "unreliable"


# ---------------------------------------------------------------- context


def item_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<div class="intercept-item[^"]*" data-line-id="(\d+)"', html)]


def test_context_shows_neighbours_with_audio_and_the_whole_recording(tmp_path):
    path = desk_store(tmp_path)
    db = sqlite_utils.Database(path)
    # Eight more lines in recording 1 (ids 5..12), so that the context is cut at 3 either side.
    db["lines"].insert_all([
        {"id": 5 + i, "recording_id": 1, "transmission_id": 1, "idx": 3 + i, "start_s": 9.1 + i * 0.1,
         "end_s": 9.15 + i * 0.1, "text_fa": f"خط {i}", "text_en": f"line {i}"} for i in range(8)])
    db.conn.close()
    ds = datasette_for(path)
    page = get(ds, "/-/intercept/context/3")
    assert page.status_code == 200
    assert item_ids(page.text) == [1, 2, 3, 5, 6, 7]
    assert 'class="intercept-item intercept-focus intercept-flagged" data-line-id="3"' in page.text
    # The focus line plays from the lead-in, the others exactly; every one has a player.
    assert 'data-line-id="3"\n      src="/-/intercept/audio/3.wav?context=2"' in page.text
    assert 'src="/-/intercept/audio/2.wav"' in page.text
    assert "2019-11-12 21:30:52 UTC" in page.text, "absolute time next to the offset"
    whole = get(ds, "/-/intercept/context/3?whole=1")
    assert item_ids(whole.text) == [1, 2, 3] + list(range(5, 13))
    assert get(ds, "/-/intercept/context/999").status_code == 404


# ---------------------------------------------------------------- traffic over time


def test_activity_chart_counts_and_bars_list_their_lines(tmp_path):
    path = desk_store(tmp_path)
    with Store(path, CREATE) as store:
        store.add_verdict(1, "confirmed", "maryam")
    ds = datasette_for(path)
    page = get(ds, "/-/intercept/activity?by=hour")
    assert page.status_code == 200 and "<svg" in page.text
    titles = re.findall(r"<title>([^<]+)</title>", page.text)[1:]  # [0]: the page title
    assert titles == ["2019-11-12T21:00:00: 3 lines", "2019-11-12T21:00:00: 2 flagged",
                      "2019-11-12T21:00:00: 1 confirmed", "2019-11-13T08:00:00: 1 lines",
                      "2019-11-13T08:00:00: 1 flagged", "2019-11-13T08:00:00: 0 confirmed"]
    links = re.findall(r'<a class="intercept-bar" data-bucket="2019-11-12T21:00:00" data-series="(\w+)" href="([^"]+)"',
                       page.text)
    by_series = {series: href.replace("&amp;", "&") for series, href in links}
    assert item_ids(get(ds, by_series["lines"]).text) == [1, 2, 3]
    assert item_ids(get(ds, by_series["flagged"]).text) == [1, 3]
    assert item_ids(get(ds, by_series["confirmed"]).text) == [1]
    day = get(ds, "/-/intercept/activity?by=day")
    assert "2019-11-13T00:00:00: 1 lines" in day.text
    assert get(ds, "/-/intercept/activity?by=week").status_code == 400
    assert get(ds, "/-/intercept/period?start=x&end=y").status_code == 400


def test_bundle_of_the_lines_on_screen(tmp_path):
    import io
    import json
    import zipfile

    from intercept.bundle import verify_bundle

    ds = datasette_for(desk_store(tmp_path))
    response = get(ds, "/-/intercept/bundle.zip?ids=1,3")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    bundle = tmp_path / "download.zip"
    bundle.write_bytes(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert [e["line_id"] for e in json.loads(archive.read("manifest.json"))["lines"]] == [1, 3]
    assert verify_bundle(bundle).ok
    assert get(ds, "/-/intercept/bundle.zip?ids=4").status_code == 410, "line 4's recording is gone"
    assert get(ds, "/-/intercept/bundle.zip?ids=x").status_code == 400
