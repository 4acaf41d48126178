"""``mos-tools serve`` in a real browser: headless Chromium, driven by selenium through
Debian's chromium-driver, against the real server (waitress) in its own process.

A rater joins, plays every clip to its end, answers, reloads (the draft comes back),
submits, and the export holds the rating; a second submission, a forged invitation and
path-traversal requests are refused; a server killed with SIGKILL mid-study loses nothing
it acknowledged. CI installs chromium and chromium-driver and sets
``MOS_TOOLS_BROWSER_REQUIRED=1``, which turns a missing browser into a failure.
"""

from __future__ import annotations

import csv
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mos_tools.cli import main
from mos_tools.hits import build_hits, read_manifest
from mos_tools.score import Rules, read_results, summarize
from mos_tools.testing import make_input

MOS_TOOLS = str(Path(sys.executable).with_name("mos-tools"))


def _tools() -> tuple[str, str]:
    browser = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    missing = "chromium" if not browser else "chromium-driver"
    if os.environ.get("MOS_TOOLS_BROWSER_REQUIRED") == "1":
        pytest.fail(
            f"MOS_TOOLS_BROWSER_REQUIRED=1 but {missing} is missing (apt install {missing})"
        )
    pytest.skip(f"{missing} is missing (apt install {missing}); CI requires it")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, hits: Path, db: Path) -> None:
        self.hits, self.db, self.port = hits, db, _free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOS_TOOLS, "serve", str(self.hits), "--db", str(self.db), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the server died: {self.proc.stderr.read()}") from None  # type: ignore[union-attr]
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def raw_get(self, path: str) -> int:
        """The status of a GET whose path goes out exactly as written (no normalising)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest("GET", path, skip_accept_encoding=True)
            connection.endheaders()
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    src = make_input(tmp_path / "in", ["real", "gen"], 4, pattern="c{}.wav")
    build_hits(condition="demo", input_dir=src, methods=["real", "gen"], batch_size=2,
               output_dir=tmp_path / "hits", seed=3)  # fmt: skip
    running = Server(tmp_path / "hits" / "demo", tmp_path / "ratings.sqlite")
    running.start()
    yield running
    running.kill()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    browser, chromedriver = _tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400"):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()


def wait_for(condition: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def play_everything(chrome: Any) -> None:
    """Play each clip to its end in the page's own players (the ended event unlocks)."""
    n = chrome.execute_script("return document.querySelectorAll('audio').length")
    for k in range(1, n + 1):
        chrome.execute_script(f"document.getElementById('audio_{k}').play()")
        wait_for(lambda k=k: chrome.execute_script(f"return !!window.mosTemplate.played[{k}]"))


def test_a_rater_plays_rates_reloads_submits_and_the_export_holds_it(
    server: Server, driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/")
    driver.find_element(By.NAME, "name").send_keys("alice")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(lambda: "0 of 4 HITs rated; 4 remain." in driver.page_source)
    driver.find_element(By.ID, "next").click()
    wait_for(lambda: driver.find_elements(By.TAG_NAME, "audio"))
    hit_url = driver.current_url
    submit = driver.find_element(By.ID, "submitButton")
    assert not submit.is_enabled()
    play_everything(driver)
    radios = driver.find_elements(By.CSS_SELECTOR, "input[type=radio][value='4']")
    assert len(radios) == 4  # quality and musicality of two clips
    radios[0].click()
    wait_for(lambda: driver.find_element(By.ID, "saved").text == "Answer saved.")
    driver.refresh()  # the draft comes back: the answer is still chosen and unlocked
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=radio][value='4']"))
    first = driver.find_elements(By.CSS_SELECTOR, "input[type=radio][value='4']")[0]
    assert first.is_selected()
    play_everything(driver)
    for radio in driver.find_elements(By.CSS_SELECTOR, "input[type=radio][value='4']"):
        if not radio.is_selected():
            radio.click()
    wait_for(lambda: driver.find_element(By.ID, "submitButton").is_enabled())
    driver.save_screenshot(str(tmp_path / "rating-page.png"))
    assert (tmp_path / "rating-page.png").read_bytes()[:4] == b"\x89PNG"
    driver.find_element(By.ID, "submitButton").click()
    wait_for(lambda: "1 of 4 HITs rated; 3 remain." in driver.page_source)
    driver.get(hit_url)  # a second submission of the same HIT
    assert "you have rated this HIT already" in driver.page_source

    # A forged invitation, and requests for files outside the study.
    driver.get(server.url + "/join/not-a-real-token")
    assert "unknown invitation" in driver.page_source
    for path in ("/audio/demo/../manifest.json", "/audio/demo/..%2fmanifest.json",
                 "/audio/demo/%2e%2e%2f%2e%2e%2fratings.sqlite", "/audio/../../etc/passwd",
                 "/../../../etc/passwd", "/audio/demo/%2fetc%2fpasswd"):  # fmt: skip
        assert server.raw_get(path) == 404, path

    # The server dies mid-study (SIGKILL: no cleanup); what it acknowledged is there.
    server.kill()
    out = tmp_path / "results.csv"
    assert main(["export", "--db", str(server.db), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["WorkerId"] for r in rows] == ["alice"]
    assert {rows[0][f"Answer.{q}_{i}"] for q in ("quality", "musicality") for i in (1, 2)} == {"4"}
    manifest = read_manifest(server.hits / "manifest.json")
    ratings, _ = read_results([out], manifest)
    summary = summarize(ratings, [], manifest, Rules(outlier_z=0))
    assert {r["mos"] for r in summary["scores"]} == {4.0}

    # Restarted, the study continues where it stopped.
    server.start()
    driver.get(server.url + "/")
    wait_for(lambda: "1 of 4 HITs rated; 3 remain." in driver.page_source)
