"""The review UI end to end in real headless Chromium: flagged page, Farsi right to left,
one line's audio playing for the line's length, login, a verdict that survives a reload.

Skips only when chromium or chromedriver is not installed (`apt-get install -y chromium
chromium-driver`). Set INTERCEPT_SCREENSHOT=PATH.png to keep the
screenshot there; otherwise it goes to the test's temporary folder.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

# The same store the Datasette-client tests use (pytest puts tests/ on sys.path).
from test_review import FARSI_LINE, PASSWORD, RECORDING_S, REVIEWER, build_store, write_wav

from intercept.review import ReviewOptions, hash_password, make_datasette

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
LINE_1_SECONDS = 2.5  # line 1 of the store runs from 1.0 s to 3.5 s

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(datasette):
    """The Datasette app served by uvicorn in a thread; yields its address."""
    port = free_port()
    uvicorn_server = uvicorn.Server(uvicorn.Config(datasette.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture()
def server(tmp_path):
    recording = tmp_path / "radio.wav"
    write_wav(recording, RECORDING_S)
    store = tmp_path / "store.db"
    build_store(store, recording)
    datasette = make_datasette(
        store,
        ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)}, secret="browser-test",
                      public_read=True),
    )
    with serving(datasette) as address:
        yield address


@pytest.fixture()
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1920,1100",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def row_of_line(browser, line_id: int):
    audio = browser.find_element(By.CSS_SELECTOR, f'audio[data-line-id="{line_id}"]')
    return audio.find_element(By.XPATH, "./ancestor::tr")


def test_review_in_a_real_browser(server, browser, tmp_path):
    wait = WebDriverWait(browser, 20)
    # The analysts' table of the queue (the start page is the reviewer's queue: test_review_team_browser).
    browser.get(server + "/-/intercept/table/flagged_lines")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.rows-and-columns")))
    assert "/store/flagged_lines" in browser.current_url

    # Farsi renders right to left.
    farsi = next(cell for cell in browser.find_elements(By.CSS_SELECTOR, ".intercept-fa") if cell.text == FARSI_LINE)
    assert browser.execute_script("return getComputedStyle(arguments[0]).direction", farsi) == "rtl"
    english = browser.find_element(By.CSS_SELECTOR, "td.col-text_en")
    assert browser.execute_script("return getComputedStyle(arguments[0]).direction", english) == "ltr"

    # One line's audio plays, and lasts as long as the line.
    played = browser.execute_async_script(
        """
        const [audio, done] = [document.querySelector('audio[data-line-id="1"]'), arguments[arguments.length - 1]];
        audio.addEventListener('error', () => done({error: String(audio.error && audio.error.code)}));
        audio.play().then(() => {
          const started = () => audio.currentTime > 0
            ? done({duration: audio.duration, currentTime: audio.currentTime, paused: audio.paused})
            : setTimeout(started, 50);
          started();
        }).catch(error => done({error: String(error)}));
        """
    )
    assert "error" not in played, played
    assert played["currentTime"] > 0 and not played["paused"]
    assert played["duration"] == pytest.approx(LINE_1_SECONDS, abs=0.05)

    # Anonymous visitors see no verdict forms.
    assert browser.find_elements(By.CSS_SELECTOR, "form.intercept-verdict") == []

    # Log in.
    browser.get(server + "/-/login")
    browser.find_element(By.NAME, "username").send_keys(REVIEWER)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body.intercept-queue")))
    browser.get(server + "/-/intercept/table/flagged_lines")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "form.intercept-verdict")))
    assert "/store/flagged_lines" in browser.current_url

    screenshot = Path(os.environ.get("INTERCEPT_SCREENSHOT") or tmp_path / "review-screenshot.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000

    # Record a verdict on line 1.
    form = row_of_line(browser, 1).find_element(By.CSS_SELECTOR, "form.intercept-verdict")
    form.find_element(By.NAME, "note").send_keys("fox means the courier")
    form.find_element(By.CSS_SELECTOR, 'button[value="confirmed"]').click()
    # Back on the queue of lines awaiting review, where line 1 no longer is.
    wait.until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, 'audio[data-line-id="1"]'))

    # Reload the page with every flagged line and see the verdict.
    browser.get(server + "/store/flagged_lines")
    row = row_of_line(browser, 1)
    assert row.find_element(By.CSS_SELECTOR, "td.col-verdict").text == "confirmed"
    assert row.find_element(By.CSS_SELECTOR, "td.col-reviewer").text == REVIEWER
