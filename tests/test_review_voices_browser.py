"""The voice links of the review UI in real headless Chromium: on the flagged-lines page each
line gets a link to its voice ("other transmissions of this voice"), filled in by voices.js."""
from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from intercept.review import ReviewOptions, hash_password, make_datasette
from intercept.store import CREATE, Store
from test_review import PASSWORD, REVIEWER
from test_review_browser import browser, pytestmark, serving  # noqa: F401 (fixture and skip mark)
from test_review_voices import store  # noqa: F401 (fixture: two voices in two recordings)


def test_flagged_lines_link_to_their_voice(store, browser):  # noqa: F811
    db_path = store
    with Store(db_path, CREATE) as opened:
        opened.name_voice(opened.voices_of_lines([1])[1]["voice_id"], "operator A", REVIEWER)
        voice_of_line_4 = opened.voices_of_lines([4])[4]["voice_id"]
    datasette = make_datasette(
        db_path, ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)}, secret="voices-test",
                                        public_read=True))
    with serving(datasette) as address:
        browser.get(address + "/store/flagged_lines")
        links = WebDriverWait(browser, 20).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "a.intercept-voice") if len(
                b.find_elements(By.CSS_SELECTOR, "a.intercept-voice")) == 3 else False)
        labels = sorted(link.text for link in links)
        assert sum(label.endswith(": operator A") for label in labels) == 2, labels  # lines 1 and 3
        target = [link for link in links if link.get_attribute("href").endswith(f"/-/intercept/voices/{voice_of_line_4}")]
        assert len(target) == 1 and target[0].get_attribute("title") == "other transmissions of this voice"
        target[0].click()
        WebDriverWait(browser, 20).until(lambda b: f"voice {voice_of_line_4}" in b.find_element(By.TAG_NAME, "h1").text)
        assert "gone.wav" in browser.page_source
