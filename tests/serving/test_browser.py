"""The web demo in a real browser (Debian chromium + chromedriver through selenium, headless): open ``/``, type
a sentence, generate, and check the page's <audio> element holds non-silent audio of the length the pipeline
gives for that text; the page loads nothing from any host but the server's loopback address."""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

from models.base.pipeline import load_pipeline
from tests.serving.live import LiveServer, make_tiny_voice

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (utils/install_system_deps.sh)")
TEXT = "Hello there, this is a browser test of the speech demo."
LOCAL = ("127.0.0.1", "localhost")
DECODE = """
const done = arguments[arguments.length - 1];
const audio = document.querySelector('#tts-output audio');
fetch(audio.src).then(r => r.arrayBuffer()).then(b => new OfflineAudioContext(1, 1, 16000).decodeAudioData(b))
  .then(buf => { const x = buf.getChannelData(0); let peak = 0, energy = 0;
                 for (const v of x) { peak = Math.max(peak, Math.abs(v)); energy += v * v; }
                 done({length: buf.length, rate: buf.sampleRate, peak: peak, rms: Math.sqrt(energy / x.length)}); })
  .catch(e => done({error: String(e)}));
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_tiny_voice(root / "tiny")
    live = LiveServer(["--ckpt_dir", str(root / "tiny")], root / "server.log").wait_ready()
    yield live, root / "tiny"
    assert live.stop() == 0, live.output()


@pytest.fixture()
def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def test_page_names_no_outside_host(demo):
    live, _ = demo
    page = httpx.get(live.url + "/ui/", timeout=30)
    assert page.status_code == 200
    for url in re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="([^"]+)"', page.text):
        assert urlparse(url).hostname in (None, *LOCAL), url  # relative or loopback
    theme = httpx.get(live.url + "/ui/theme.css", timeout=30).text
    assert "googleapis" not in theme and "system-ui" in theme  # system fonts, no Google Fonts


def test_type_generate_and_hear(demo, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    live, voice = demo
    browser.get(live.url + "/")
    assert browser.current_url.rstrip("/").endswith("/ui")
    box = WebDriverWait(browser, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "#tts-text textarea"))
    assert browser.find_element(By.CSS_SELECTOR, "#tts-speaker").is_displayed()  # a 3-speaker model
    box.send_keys(TEXT)
    browser.find_element(By.CSS_SELECTOR, "#tts-generate").click()
    WebDriverWait(browser, 90).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#tts-output audio[src]"))
    heard = browser.execute_async_script(DECODE)
    assert "error" not in heard, heard
    expected = load_pipeline(str(voice)).synthesize([TEXT], speakers=["ann"], seed=1234)[0].waveform
    assert heard["rate"] == 16000 and heard["length"] == expected.size  # the demo's defaults: speaker ann, seed 1234
    assert heard["peak"] > 0.01 and heard["rms"] > 0.2 * float(np.sqrt(np.mean(expected ** 2)))
    link = browser.find_element(By.CSS_SELECTOR, "#tts-output a[download]")  # the download link
    assert urlparse(link.get_attribute("href")).hostname in LOCAL
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("data:", "blob:")):
                hosts.add(urlparse(url).hostname)
    assert hosts and hosts <= set(LOCAL), hosts  # nothing fetched from outside (fonts, scripts, analytics)
