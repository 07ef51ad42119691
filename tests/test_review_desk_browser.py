"""The reviewer's desk in real headless Chromium, on the store the real batch made from
audio_samples/ (conftest's sample_batch): flagged words marked, context with audio, verdicts by
keyboard without a reload, the activity chart and its bars.

Set INTERCEPT_SCREENSHOT_DIR=docs to refresh docs/review-flagged.png, review-context.png and
review-activity.png; otherwise they go to the test's temporary folder.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlite_utils
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from test_review import PASSWORD, REVIEWER
from test_review_browser import CHROMEDRIVER, CHROMIUM, browser, serving  # noqa: F401 (browser: a fixture)

from intercept.review import ReviewOptions, hash_password, make_datasette

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"
)
# A time for each sample recording, as a sidecar or `intercept run --recorded-at` would give it
# (the sample file names carry no stamp): two in one hour, two the next day.
RECORDED_AT = {"bird_or_fox.ogg": "2019-11-12T21:30:45+00:00", "short_call.wav": "2019-11-12T21:50:00+00:00",
               "plain_traffic.wav": "2019-11-13T08:00:00+00:00", "session_long.mp3": "2019-11-13T09:15:00+00:00"}


@pytest.fixture()
def sample_store(sample_batch, tmp_path):
    db_path, _, _ = sample_batch
    copy = tmp_path / "samples.db"
    shutil.copyfile(db_path, copy)
    db = sqlite_utils.Database(copy)
    for name, when in RECORDED_AT.items():
        db.execute("update recordings set recorded_at = ? where path like ?", [when, f"%/{name}"])
    db.conn.commit()
    db.close()
    return copy


@pytest.fixture()
def server(sample_store):
    datasette = make_datasette(sample_store, ReviewOptions(
        accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)}, secret="desk-browser-test",
        public_read=True))
    with serving(datasette) as address:
        yield address


def screenshot(browser, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("INTERCEPT_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(folder / name))
    assert (folder / name).stat().st_size > 10_000


def log_in(browser, server, wait) -> None:
    browser.get(server + "/-/login")
    browser.find_element(By.NAME, "username").send_keys(REVIEWER)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-queue")))
    # Datasette's table of the queue (the analysts' view); the reviewer's queue: test_review_team_browser.
    browser.get(server + "/-/intercept/table/flagged_lines")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "form.intercept-verdict")))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-marks-ready")))


def press(browser, key: str) -> None:
    ActionChains(browser).send_keys(key).perform()


def test_marks_context_keyboard_verdicts_and_activity(server, browser, sample_store, tmp_path):
    wait = WebDriverWait(browser, 30)
    store = sqlite_utils.Database(sample_store)
    flags = list(store.query(
        "select flags.*, lines.text_fa, lines.text_en from flags join lines on lines.id = flags.line_id "
        "where flags.kind != 'alternative' order by flags.line_id, flags.span_start"))
    assert flags, "the sample batch flags bird_or_fox.ogg"
    # The desk's queue: lines awaiting review at or above the queue threshold (a flag below it,
    # such as an English match of Whisper's invented English, stays out of the queue).
    from intercept.scoring import DEFAULT_THRESHOLD

    queue = [row["line_id"] for row in store.query(
        "select line_id from flagged_lines where verdict is null and score >= ? order by score desc, line_id",
        [DEFAULT_THRESHOLD])]
    browser.set_window_size(1280, 860)  # smaller screenshots for the docs
    log_in(browser, server, wait)

    # 1. Every flag's span is marked in the Farsi (or, for an English match, in the English).
    for flag in flags:
        if flag["line_id"] not in queue[:50]:
            continue
        row = browser.find_element(By.CSS_SELECTOR, f'tr.intercept-item[data-line-id="{flag["line_id"]}"]')
        cell = row.find_element(By.CSS_SELECTOR, "td.col-text_en" if flag["kind"] == "english" else "td.col-text_fa")
        text = flag["text_en"] if flag["kind"] == "english" else flag["text_fa"]
        marked = [m for m in cell.find_elements(By.CSS_SELECTOR, "mark.intercept-mark")
                  if str(flag["id"]) in m.get_attribute("data-flag-ids").split()]
        assert marked, f"flag {flag['id']} ({flag['concept']}) is not marked"
        assert text[flag["span_start"]:flag["span_end"]].strip() in marked[0].text
        assert flag["concept"] in marked[0].get_attribute("title")
        assert "recogniser confidence" in row.find_element(By.CSS_SELECTOR, "td.col-text_en").text
    farsi = browser.find_element(By.CSS_SELECTOR, "td.col-text_fa .intercept-fa")
    assert browser.execute_script("return getComputedStyle(arguments[0]).direction", farsi) == "rtl"
    assert "Keyboard review" in browser.find_element(By.CSS_SELECTOR, "details.intercept-keys").text
    screenshot(browser, "review-flagged.png", tmp_path)

    # 4. Keyboard: the first line is current; c confirms it without reloading the page.
    browser.execute_script("window.interceptNotReloaded = true")
    first = queue[0]
    assert browser.find_element(By.CSS_SELECTOR, "tr.intercept-current").get_attribute("data-line-id") == str(first)
    press(browser, "c")
    wait.until(lambda d: "saved as" in d.find_element(By.CSS_SELECTOR, ".intercept-key-status").text)
    assert browser.execute_script("return window.interceptNotReloaded") is True
    # One row per flag concept of the line (c judges all of its flags).
    verdicts = list(sqlite_utils.Database(sample_store).query("select distinct line_id, verdict, reviewer from verdicts"))
    assert verdicts == [{"line_id": first, "verdict": "confirmed", "reviewer": REVIEWER}]
    if len(queue) > 1:
        # The next line is current now; f marks it a false positive.
        current = browser.find_element(By.CSS_SELECTOR, "tr.intercept-current")
        assert current.get_attribute("data-line-id") == str(queue[1])
        press(browser, "f")
        wait.until(lambda d: f"line {queue[1]}: false positive" in d.find_element(
            By.CSS_SELECTOR, ".intercept-key-status").text)
        assert browser.execute_script("return window.interceptNotReloaded") is True

    # 3. Context in one click: the lines around the first one, each with a player.
    row = browser.find_element(By.CSS_SELECTOR, f'tr.intercept-item[data-line-id="{first}"]')
    row.find_element(By.CSS_SELECTOR, "a.intercept-context-link").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".intercept-lines")))
    items = browser.find_elements(By.CSS_SELECTOR, ".intercept-item")
    focus = browser.find_element(By.CSS_SELECTOR, ".intercept-item.intercept-focus")
    assert focus.get_attribute("data-line-id") == str(first)
    recording_id = store.execute("select recording_id from lines where id = ?", [first]).fetchone()[0]
    in_recording = [r[0] for r in store.execute(
        "select id from lines where recording_id = ? order by start_s, id", [recording_id])]
    at = in_recording.index(first)
    assert [int(i.get_attribute("data-line-id")) for i in items] == in_recording[max(0, at - 3):at + 4]
    assert all(i.find_elements(By.CSS_SELECTOR, "audio") for i in items)
    assert "UTC" in focus.find_element(By.CSS_SELECTOR, ".intercept-at").text
    # p plays the current (focus) line from the lead-in.
    press(browser, "p")
    played = wait.until(lambda d: d.execute_script(
        "const a = document.querySelector('.intercept-focus audio');"
        "return a.currentTime > 0 ? {src: a.src, paused: a.paused} : null;"))
    assert "context=2" in played["src"]
    screenshot(browser, "review-context.png", tmp_path)
    browser.find_element(By.CSS_SELECTOR, "a.intercept-other-view").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".intercept-item")) == len(in_recording))

    # 5. Traffic over time: bars per hour; a bar lists its lines.
    browser.get(server + "/-/intercept/activity")
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.intercept-activity a.intercept-bar")
    buckets = sorted({b.get_attribute("data-bucket") for b in bars})
    assert buckets == ["2019-11-12T21:00:00", "2019-11-13T08:00:00", "2019-11-13T09:00:00"]
    screenshot(browser, "review-activity.png", tmp_path)
    confirmed_bar = next(b for b in bars if b.get_attribute("data-series") == "confirmed"
                         and b.get_attribute("textContent").endswith(": 1 confirmed"))
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", confirmed_bar)
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".intercept-lines")))
    assert [i.get_attribute("data-line-id") for i in browser.find_elements(By.CSS_SELECTOR, ".intercept-item")] \
        == [str(first)]
