"""Two reviewers and a lead on the review desk in real headless Chromium, on the store the real
batch made from audio_samples/: the queue's first screen, verdicts by key, a note that Enter does
not submit, withdrawal, a reviewer flag from the context view, a claim, disagreement, the lead's
decision and the progress figures.

Set INTERCEPT_SCREENSHOT_DIR=docs to refresh docs/review-queue.png, review-disputed.png,
review-context-flag.png and review-progress.png (1400x900, the first screen); otherwise they go to
the test's temporary folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlite_utils
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

from test_review import PASSWORD
from test_review_browser import CHROMEDRIVER, CHROMIUM, browser, serving  # noqa: F401 (browser: a fixture)
from test_review_desk_browser import sample_store  # noqa: F401 (a fixture)

from intercept.review import ReviewOptions, hash_password, make_datasette
from intercept.store import READ, Store, team

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"
)
MARYAM, ALI, LEILA = "maryam", "ali", "leila"
WIDTH, HEIGHT = 1400, 900


@pytest.fixture()
def server(sample_store):  # noqa: F811 (the fixture above)
    accounts = {name: hash_password(PASSWORD, iterations=1000) for name in (MARYAM, ALI, LEILA)}
    datasette = make_datasette(sample_store, ReviewOptions(accounts=accounts, secret="team-browser",
                                                           leads=frozenset({LEILA})))
    with serving(datasette) as address:
        yield address


def screenshot(browser, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("INTERCEPT_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    browser.execute_script("return document.fonts.ready")
    browser.save_screenshot(str(folder / name))
    assert (folder / name).stat().st_size > 10_000


def log_in(browser, server, wait, name: str) -> None:
    browser.delete_all_cookies()  # the previous reviewer leaves
    browser.get(server + "/-/login")
    browser.find_element(By.NAME, "username").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-queue")))


def press(browser, key: str) -> None:
    ActionChains(browser).send_keys(key).perform()


def status(browser) -> str:
    return browser.find_element(By.CSS_SELECTOR, ".intercept-key-status").text


def item(browser, line_id: int):
    return browser.find_element(By.CSS_SELECTOR, f'.intercept-item[data-line-id="{line_id}"]')


def in_first_screen(browser, element) -> bool:
    box = browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};", element)
    return box["top"] >= 0 and box["bottom"] <= HEIGHT and box["left"] >= 0 and box["right"] <= WIDTH


def test_two_reviewers_a_dispute_and_the_leads_decision(server, browser, sample_store, tmp_path):  # noqa: F811
    # A verdict's form reloads the page: an element read while it reloads is stale, so look again.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    browser.set_window_size(WIDTH, HEIGHT)
    db = sqlite_utils.Database(sample_store)
    queue = [row["line_id"] for row in db.query(
        "select line_id from flagged_lines where verdict is null and score >= 0.5 order by score desc, line_id")]
    assert queue, "the sample batch flags bird_or_fox.ogg"
    first = queue[0]

    # 1. Maryam logs in and lands on the queue: its first line, whole, on the first screen.
    log_in(browser, server, wait, MARYAM)
    wait.until(lambda d: d.execute_script("return document.fonts.status") == "loaded")
    assert browser.title == "Lines awaiting review · intercept review"
    assert browser.execute_script("return window.scrollY") == 0, "no jump on load"
    head = item(browser, first)
    for part in ("audio", ".intercept-fa", ".intercept-en", ".intercept-flags",
                 ".intercept-concept-verdict button"):
        assert in_first_screen(browser, head.find_element(By.CSS_SELECTOR, part)), part
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH, "no sideways scrolling"
    farsi = head.find_element(By.CSS_SELECTOR, ".intercept-fa")
    assert browser.execute_script("return document.fonts.check('16px Vazirmatn', arguments[0].textContent)", farsi)
    assert "Vazirmatn" in browser.execute_script("return getComputedStyle(arguments[0]).fontFamily", farsi)
    loaded = browser.execute_script(
        "return Array.from(document.fonts).filter(f => f.family.includes('Vazirmatn') && f.status === 'loaded').length")
    assert loaded >= 1, "the Vazirmatn file was fetched for the Farsi on screen"
    menu = [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".intercept-menu a")]
    assert menu == ["Queue", "Disputed", "Timeline", "Activity", "Voices", "Verdicts", "Progress", "Exports", "Table"]
    screenshot(browser, "review-queue.png", tmp_path)

    # 2. c confirms every flag of the first line, by key, without a reload.
    browser.execute_script("window.interceptNotReloaded = true")
    press(browser, "c")
    wait.until(lambda d: "saved as maryam" in status(d))
    assert browser.execute_script("return window.interceptNotReloaded") is True
    wait.until(lambda d: item(d, first).get_attribute("data-verdict") == "confirmed")
    # w withdraws it: history kept, the line back in the queue.
    press(browser, "k")
    press(browser, "w")
    wait.until(lambda d: "withdrawn" in status(d))
    # The status line and the item's mark are set one after the other: wait for both.
    wait.until(lambda d: item(d, first).get_attribute("data-verdict") is None)
    with Store(sample_store, READ) as store:
        assert [v["verdict"] for v in store.verdicts_of(first)][-1] == "withdrawn"
        assert first not in store.confirmed_line_ids()
    press(browser, "c")
    wait.until(lambda d: item(d, first).get_attribute("data-verdict") == "confirmed")

    # 3. A note: Enter makes a new line, never a verdict; Ctrl+Enter saves; Esc back to the keys.
    note_line = queue[1] if len(queue) > 1 else first
    rows_before = db.execute("select count(*) from verdicts").fetchone()[0]
    field = item(browser, note_line).find_element(By.CSS_SELECTOR, "form.intercept-note-form textarea")
    assert field.get_attribute("dir") == "auto"
    field.click()
    field.send_keys("صدای دوم")
    field.send_keys(Keys.ENTER)
    field.send_keys("second voice")
    assert db.execute("select count(*) from verdicts").fetchone()[0] == rows_before, "Enter judged nothing"
    field.send_keys(Keys.CONTROL, Keys.ENTER)
    wait.until(lambda d: "note saved" in status(d))
    notes = list(db.query("select note, reviewer from line_notes"))
    assert notes == [{"note": "صدای دوم\nsecond voice", "reviewer": MARYAM}]
    wait.until(lambda d: "صدای دوم" in item(d, note_line).text)
    field = item(browser, note_line).find_element(By.CSS_SELECTOR, "form.intercept-note-form textarea")
    field.click()
    field.send_keys(Keys.ESCAPE)
    assert browser.execute_script("return document.activeElement.tagName") != "TEXTAREA"

    # 4. Maryam claims the first line's recording.
    item(browser, first).find_element(By.CSS_SELECTOR, "form.intercept-claim button[value=recording]").click()
    wait.until(lambda d: "saved" in status(d))
    recording_id = db.execute("select recording_id from lines where id = ?", [first]).fetchone()[0]
    assert [(c["reviewer"], c["recording_id"]) for c in team.open_claims(db.conn)] == [(MARYAM, recording_id)]

    # 5. A reviewer flag from the context view, on a line the lexicon did not flag.
    browser.get(f"{server}/-/intercept/context/{first}")
    unflagged = [int(i.get_attribute("data-line-id")) for i in browser.find_elements(By.CSS_SELECTOR, ".intercept-item")
                 if not i.get_attribute("data-flagged")]
    assert unflagged, "the context holds an unflagged line"
    target = item(browser, unflagged[0])
    assert not target.find_elements(By.CSS_SELECTOR, ".intercept-concept-verdict"), "no verdict for an unflagged line"
    target.find_element(By.CSS_SELECTOR, "details.intercept-add-flag summary").click()
    form = target.find_element(By.CSS_SELECTOR, "form.intercept-flag-form")
    form.find_element(By.NAME, "concept").send_keys("wolf")
    form.find_element(By.NAME, "heard_form").send_keys("گرگه")
    form.find_element(By.NAME, "suggest").click()
    form.find_element(By.NAME, "note").send_keys("heard under the hiss")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, f'.intercept-item[data-line-id="{unflagged[0]}"] .intercept-concept[data-concept="wolf"]'))
    flag = next(db.query("select kind, flagged_by, note from flags where line_id = ? and concept = 'wolf'",
                         [unflagged[0]]))
    assert flag == {"kind": "reviewer", "flagged_by": MARYAM, "note": "heard under the hiss"}
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "review-context-flag.png", tmp_path)

    # 6. Ali: maryam's recording is left out of his queue; he disagrees on the first line anyway.
    log_in(browser, server, wait, ALI)
    shown = [int(i.get_attribute("data-line-id")) for i in browser.find_elements(By.CSS_SELECTOR, ".intercept-item")]
    in_recording = {r[0] for r in db.execute("select id from lines where recording_id = ?", [recording_id])}
    assert not set(shown) & in_recording
    assert "claimed by others: maryam" in browser.find_element(By.CSS_SELECTOR, ".intercept-queue-bar").text
    browser.get(f"{server}/-/intercept/context/{first}")
    concept = item(browser, first).find_element(By.CSS_SELECTOR, ".intercept-concept")
    concept.find_element(By.CSS_SELECTOR, ".intercept-concept-verdict button[value=false_positive]").click()
    wait.until(lambda d: item(d, first).find_element(By.CSS_SELECTOR, ".intercept-concept")
               .get_attribute("data-outcome") == "disputed")

    # 7. The lead sees the dispute with every verdict and decides.
    log_in(browser, server, wait, LEILA)
    browser.find_element(By.LINK_TEXT, "Disputed").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'.intercept-item[data-line-id="{first}"]'))
    history = item(browser, first).find_element(By.CSS_SELECTOR, ".intercept-concept[data-outcome=disputed]").text
    assert "maryam: confirmed" in history and "ali: false positive" in history
    screenshot(browser, "review-disputed.png", tmp_path)
    item(browser, first).find_element(By.CSS_SELECTOR, ".intercept-decide button[value=confirmed]").click()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".intercept-concept[data-outcome=disputed]"))
    with Store(sample_store, READ) as store:
        assert first in store.confirmed_line_ids()
        record = team.review_record(store.review_of_lines([first])[first])
    assert any(c["reviewers_differ"] and c["decision"] == "confirmed" for c in record["concepts"].values())

    # 8. Progress: the figures the store gives, per reviewer and for the queue.
    browser.find_element(By.LINK_TEXT, "Progress").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "dl.intercept-summary")))
    figures = team.progress(db.conn, threshold=0.5)
    shown = {e.get_attribute("data-figure"): e.find_element(By.TAG_NAME, "dd").text
             for e in browser.find_elements(By.CSS_SELECTOR, "dl.intercept-summary > div")}
    assert shown["reviewed in all"] == str(figures["reviewed"]) and shown["disputed"] == "0"
    assert shown["remaining"] == str(figures["remaining"])
    reviewers = browser.find_element(By.CSS_SELECTOR, "table.intercept-figures").text
    assert "maryam" in reviewers and "ali" in reviewers
    assert "maryam: recording" in browser.find_element(By.CSS_SELECTOR, "ul.intercept-claims").text
    screenshot(browser, "review-progress.png", tmp_path)
