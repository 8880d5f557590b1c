"""The supervisor page in headless Chromium while SIPp calls run: a live call appears, then goes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.server import REPO, ivr_server
from tests.sipp_runner import SIPP_DIR, start_sipp
from tests.test_http_api import TOKEN, free_tcp_port


def browser(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def test_a_live_call_appears_and_disappears(tmp_path: Path) -> None:
    http_port = free_tcp_port()
    agents = tmp_path / "agents.yaml"
    agents.write_text(
        "agents:\n  - {id: alice, name: Alice, uri: 'sip:alice@127.0.0.1:9', languages: [en]}\n"
    )
    args = ("--http-port", str(http_port), "--api-token", TOKEN, "--agents", str(agents))
    with ivr_server(tmp_path, *args, rtp_base=30000) as server:
        driver = browser(tmp_path / "profile")
        try:
            driver.get(f"http://127.0.0.1:{http_port}/?token={TOKEN}")
            calls = lambda d: d.find_element(By.CSS_SELECTOR, "#calls tbody").text  # noqa: E731
            WebDriverWait(driver, 10).until(lambda d: "No calls right now" in calls(d))
            assert "Alice" in driver.find_element(By.ID, "agents").text
            target = f"127.0.0.1:{server.address[1]}"
            with start_sipp(SIPP_DIR / "uac_caller_hangs_up.xml", target, sets={"hangup_ms": 4000}) as caller:
                WebDriverWait(driver, 10).until(lambda d: "demo" in calls(d))
                time.sleep(1.2)  # one more update, so the step is shown
                # docs/supervisor.png is a copy of this picture (set IVR_DOCS_SCREENSHOT=1 to renew it).
                shot = (
                    REPO / "docs" / "supervisor.png"
                    if os.environ.get("IVR_DOCS_SCREENSHOT")
                    else tmp_path / "page.png"
                )
                assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
                assert "greeting" in calls(driver) or "digits" in calls(driver)
                assert caller.wait(timeout=20).ok
            WebDriverWait(driver, 10).until(lambda d: "No calls right now" in calls(d))
            steps = driver.find_element(By.ID, "steps").text
            assert "demo" in steps and "greeting" in steps
        finally:
            driver.quit()
