"""A reviewer corrects lines in the desk, in real headless Chromium: from the queue (e, type,
Ctrl+Enter) and from the context view; the correction changes the line's flags, English, search
hits and exports, and the history is kept and shown."""
from __future__ import annotations

import json

import pytest
import sqlite_utils
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from test_review import PASSWORD, REVIEWER, build_store, write_wav
from test_review_browser import CHROMEDRIVER, CHROMIUM, browser, serving  # noqa: F401 (browser: a fixture)
from test_review_desk_browser import press

from intercept.export import ExportOptions, export_text
from intercept.review import ReviewOptions, hash_password, make_datasette
from intercept.store import READ, Store

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"
)
WOLF = "امشب گرگ می‌آید"
BIRD = "پرنده رفت"


@pytest.fixture()
def store_path(tmp_path):
    recording = tmp_path / "radio.wav"
    write_wav(recording, 10.0)
    path = tmp_path / "store.db"
    build_store(path, recording)
    return path


@pytest.fixture()
def server(store_path):
    datasette = make_datasette(store_path, ReviewOptions(
        accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)}, secret="corrections-browser-test"))
    with serving(datasette) as address:
        yield address


def log_in(browser, server, wait) -> None:
    browser.get(server + "/-/login")
    browser.find_element(By.NAME, "username").send_keys(REVIEWER)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-queue")))
    # The start page is the reviewer's queue (issue 27); this test edits from Datasette's table of
    # the queue (the analysts' view), where the editor works on the table's rows.
    browser.get(server + "/-/intercept/table/flagged_lines")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-marks-ready")))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-history-ready")))


def test_a_reviewers_correction_changes_flags_english_search_and_exports(server, browser, store_path):
    wait = WebDriverWait(browser, 60)
    log_in(browser, server, wait)
    browser.execute_script("window.interceptNotReloaded = true")
    assert "edit the line's text" in browser.find_element(By.CSS_SELECTOR, "details.intercept-keys").text
    current = browser.find_element(By.CSS_SELECTOR, "tr.intercept-current")
    assert current.get_attribute("data-line-id") == "1"  # the queue's first line: fox and bird

    # e opens the editor on the current line: Farsi right to left in the Persian font, the clip looping.
    press(browser, "e")
    editor = wait.until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, '.intercept-editor[data-line-id="1"]')))
    farsi = editor.find_element(By.CSS_SELECTOR, "textarea[name=text_fa]")
    assert farsi.get_attribute("dir") == "rtl" and farsi.get_attribute("lang") == "fa"
    assert browser.execute_script("return getComputedStyle(arguments[0]).direction", farsi) == "rtl"
    assert "Vazirmatn" in browser.execute_script("return getComputedStyle(arguments[0]).fontFamily", farsi)
    assert browser.switch_to.active_element == farsi
    audio = editor.find_element(By.CSS_SELECTOR, "audio")
    assert browser.execute_script("return arguments[0].loop", audio) is True
    assert audio.get_attribute("src").endswith("/-/intercept/audio/1.wav")
    # (chosen by script: Selenium's Select clicks through to the keyboard help's summary above the table)
    speed = editor.find_element(By.CSS_SELECTOR, "select[name=speed]")
    assert [o.get_attribute("value") for o in Select(speed).options] == ["1", "0.75", "0.5"]
    browser.execute_script("arguments[0].value = '0.5'; arguments[0].dispatchEvent(new Event('change'))", speed)
    assert browser.execute_script("return arguments[0].playbackRate", audio) == 0.5
    # Esc cancels: nothing is written
    farsi.send_keys(Keys.ESCAPE)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".intercept-editor"))
    assert not sqlite_utils.Database(store_path)["line_revisions"].count

    # e again, type the line as it was said and an English; Ctrl+Enter saves without a reload.
    press(browser, "e")
    editor = wait.until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, '.intercept-editor[data-line-id="1"]')))
    farsi = editor.find_element(By.CSS_SELECTOR, "textarea[name=text_fa]")
    farsi.clear()
    farsi.send_keys(WOLF)
    english = editor.find_element(By.CSS_SELECTOR, "textarea[name=text_en]")
    assert english.get_attribute("dir") == "auto"
    english.send_keys("The wolf comes tonight")
    english.send_keys(Keys.CONTROL, Keys.ENTER)
    wait.until(lambda d: "corrected (revision" in d.find_element(By.CSS_SELECTOR, ".intercept-key-status").text)
    assert browser.execute_script("return window.interceptNotReloaded") is True
    row = browser.find_element(By.CSS_SELECTOR, 'tr.intercept-item[data-line-id="1"]')
    wait.until(lambda d: "گرگ" in row.find_element(By.CSS_SELECTOR, "td.col-text_fa").text)
    assert "The wolf comes tonight" in row.find_element(By.CSS_SELECTOR, "td.col-text_en").text
    marks = row.find_elements(By.CSS_SELECTOR, "td.col-text_fa mark.intercept-mark")
    assert any("wolf" in m.get_attribute("title") for m in marks)
    assert not any("fox" in m.get_attribute("title") for m in marks)
    history = row.find_element(By.CSS_SELECTOR, "details.intercept-history")
    assert "corrected" in history.text and REVIEWER in history.text

    # The store: a revision, the recogniser's flags superseded and kept, the reviewer text's flags.
    db = sqlite_utils.Database(store_path)
    revision = list(db["line_revisions"].rows)
    assert [(r["line_id"], r["reviewer"], r["text_en"]) for r in revision] == [(1, REVIEWER, "The wolf comes tonight")]
    flags = list(db.query("SELECT id, concept, source, superseded_by_revision FROM flags WHERE line_id = 1"))
    assert {f["id"] for f in flags if f["superseded_by_revision"] == revision[0]["id"]} == {10, 11}
    assert "wolf" in {f["concept"] for f in flags if f["source"] == "reviewer_text"}

    # Search finds the corrected text (Datasette's full-text search over lines), not the old.
    browser.get(server + "/store/lines?_search=" + "گرگ")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.rows-and-columns")))
    found = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "td.col-id a")]
    assert "1" in found
    browser.get(server + "/store/lines?_search=" + "پرنده")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body")))
    assert "1" not in [a.text for a in browser.find_elements(By.CSS_SELECTOR, "td.col-id a")]

    # From the context view: line 3 corrected without English; its old English is marked.
    browser.get(server + "/-/intercept/context/3")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-history-ready")))
    assert browser.find_element(By.CSS_SELECTOR, ".intercept-item.intercept-current").get_attribute(
        "data-line-id") == "3"
    # line 1's history shows on the context view too
    assert browser.find_elements(By.CSS_SELECTOR, '.intercept-item[data-line-id="1"] details.intercept-history')
    press(browser, "e")
    editor = wait.until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, '.intercept-editor[data-line-id="3"]')))
    farsi = editor.find_element(By.CSS_SELECTOR, "textarea[name=text_fa]")
    farsi.clear()
    farsi.send_keys(BIRD)
    farsi.send_keys(Keys.CONTROL, Keys.ENTER)
    wait.until(lambda d: "line 3: corrected" in d.find_element(By.CSS_SELECTOR, ".intercept-key-status").text)
    item = browser.find_element(By.CSS_SELECTOR, '.intercept-item[data-line-id="3"]')
    wait.until(lambda d: "پرنده" in item.find_element(By.CSS_SELECTOR, ".intercept-fa").text)
    assert "unreliable" in item.find_element(By.CSS_SELECTOR, ".intercept-en").text
    assert "uncorrected" in item.find_element(By.CSS_SELECTOR, "details.intercept-history").get_attribute("textContent")

    # Exports: the current text, with the machine's beside it; the history in the line's row.
    with Store(store_path, READ) as store:
        rows = {row["line_id"]: row for row in map(json.loads, export_text(
            store, ExportOptions(format="jsonl")).splitlines())}
        srt = export_text(store, ExportOptions(format="srt", recording_id=1))
    assert rows[1]["text_fa"] == WOLF.replace("\u200c", "\u200c") and rows[1]["text_en"] == "The wolf comes tonight"
    assert rows[1]["text_fa_machine"].startswith("امشب برویم") and rows[1]["text_en_from"] == "reviewer"
    assert "wolf" in rows[1]["concepts"] and "fox" not in rows[1]["concepts"]
    assert rows[3]["text_fa"] == BIRD and rows[3]["text_en"] == "the fox came" and rows[3]["en_reliability"] == "unreliable"
    assert "bird" in rows[3]["concepts"] and rows[3]["text_fa_machine"] == "روباه آمد"
    assert WOLF in srt and BIRD in srt and "روباه آمد" not in srt
