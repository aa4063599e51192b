"""The web demo in a real browser (Debian chromium + chromedriver through selenium, headless): open ``/``, type
a sentence, generate, and check the page's <audio> element holds non-silent audio of the length the pipeline
gives for that text; upload a source and a voice prompt in the voice-conversion tab, a recording in the
super-resolution tab, and check each result equals the pipeline's own answer; the page loads nothing from any
host but the server's loopback address."""

from __future__ import annotations

import io
import json
import re
import shutil
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import soundfile as sf

from models.base.pipeline import load_pipeline
from models.base.tasks import Audio
from tests.serving.live import SR_OVERRIDES, VC_OVERRIDES, LiveServer, write_demo_config

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
    live = LiveServer(["--config", str(write_demo_config(root))], root / "server.log").wait_ready()
    yield live, root
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

    live, root = demo
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
    expected = load_pipeline(str(root / "tiny")).synthesize([TEXT], speakers=["ann"], seed=1234)[0].waveform
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


def tone_file(path, seconds: float, hz: float, rate: int = 16000):
    """A 16-bit wav (what the demo reads back exactly: int16 / 32768) -> (path, its float samples)."""
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)), rate,
             subtype="PCM_16")
    return str(path), sf.read(str(path), dtype="float32")[0]


def open_tab(browser, tab: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                                if b.text == tab])[0].click()


def upload_and_run(browser, uploads, button: str, output: str):
    """Upload each ``(component id, file)``, press ``button``: the result's (samples, rate) as the page has it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for elem, path in uploads:
        browser.find_element(By.CSS_SELECTOR, f"#{elem} input[type=file]").send_keys(path)
        # uploaded: the component offers the file back for download
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{elem} a[download]"))
    browser.find_element(By.CSS_SELECTOR, f"#{button}").click()
    audio = WebDriverWait(browser, 90).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{output} audio[src]"))
    src = audio[0].get_attribute("src")
    assert urlparse(src).hostname in LOCAL
    return sf.read(io.BytesIO(httpx.get(src, timeout=30).content), dtype="float32")


def test_convert_and_upsample_tabs(demo, browser, tmp_path):
    from selenium.webdriver.common.by import By

    live, root = demo
    browser.get(live.url + "/ui/")
    source, source_wav = tone_file(tmp_path / "source.wav", 1.0, 150.0)
    prompt, prompt_wav = tone_file(tmp_path / "prompt.wav", 1.0, 220.0)
    open_tab(browser, "Voice conversion")
    heard, rate = upload_and_run(browser, [("vc-source", source), ("vc-prompt", prompt)], "vc-convert", "vc-output")
    vc = load_pipeline(str(root / "vc"), VC_OVERRIDES).with_settings({"noise_scale": 0.333})
    expected = vc.convert([Audio(source_wav, 16000)], [Audio(prompt_wav, 16000)], 1234)[0]  # the tab's defaults
    assert rate == expected.sample_rate and heard.size == expected.waveform.size
    np.testing.assert_allclose(heard, np.clip(expected.waveform, -1, 1), atol=2e-4)  # 16-bit rounding
    assert np.abs(heard).max() > 0.01
    open_tab(browser, "Super-resolution")
    browser.find_element(By.XPATH, "//*[@id='sr-target_rate']//label[contains(., '24000')]").click()
    heard, rate = upload_and_run(browser, [("sr-input", source)], "sr-upsample", "sr-output")
    expected = load_pipeline({"pipeline": "speechsr", "components": {}, "infer": {}}, SR_OVERRIDES).upsample(
        [Audio(source_wav, 16000)])[0]
    assert rate == 24000 == expected.sample_rate and heard.size == expected.waveform.size == 24000
    np.testing.assert_allclose(heard, np.clip(expected.waveform, -1, 1), atol=2e-4)
