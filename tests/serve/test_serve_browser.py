"""The page of ``humanparse serve`` in a real browser: Debian's Chromium, headless, driven by Selenium.

Skipped (with the reason) where Chromium, chromedriver or Selenium is missing; CI installs them
(``apt-get install -y chromium chromium-driver``, ``pip install selenium``). Set ``HUMANPARSE_SCREENSHOT``
to a file path to keep the screenshot (docs/serve_page.png is made this way), and
``HUMANPARSE_SCREENSHOT_CHECKPOINT`` to a model with a ``lip`` head to show that model instead of the tiny
random-weight one.
"""

from __future__ import annotations

import base64
import io
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from humanparse.cli.main import main
from humanparse.data.sample_data import sample_data_root

from _live_server import LiveServer

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install fastapi uvicorn python-multipart)")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install fastapi uvicorn python-multipart)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="Selenium is not installed (pip install selenium)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1150", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return os.environ.get("HUMANPARSE_SCREENSHOT_CHECKPOINT") or tiny_checkpoint


@pytest.fixture(scope="module")
def server(checkpoint):
    from humanparse.serve.service import ParseService

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with LiveServer(ParseService.from_checkpoints(checkpoint, device="cpu")) as live:
        yield live
    torch.set_num_threads(threads)


def test_upload_in_the_browser_gives_the_label_map_of_humanparse_parse(browser, server, checkpoint, tmp_path, capsys):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    photo = sorted((sample_data_root() / "lip" / "images").iterdir())[1]
    assert main(["parse", str(checkpoint), str(photo), "--domain", "lip", "--out", str(tmp_path), "--device", "cpu"]) == 0
    capsys.readouterr()
    with Image.open(tmp_path / f"{photo.stem}.png") as img:
        expected = np.array(img)

    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    Select(browser.find_element(By.ID, "domain")).select_by_value("lip")
    browser.find_element(By.ID, "files").send_keys(str(photo))
    WebDriverWait(browser, 120).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".card[data-state=done], .card[data-state=error]"))
    card = browser.find_element(By.CSS_SELECTOR, ".card")
    assert card.get_attribute("data-state") == "done", card.text

    # the P-mode PNG the page offers for download is exactly the CLI's label map
    href = card.find_element(By.CSS_SELECTOR, "a.download-png").get_attribute("href")
    assert href.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1]))) as img:
        assert img.mode == "P"
        got = np.array(img)
    assert got.shape == expected.shape and np.array_equal(got, expected)

    # the legend lists exactly the classes in the map, by name
    legend = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".legend label")]
    from humanparse.labels import get_label_space

    lip = get_label_space("lip")
    assert legend == [lip.names[k] for k in np.unique(expected)]

    # hovering a pixel reads its class
    canvas = card.find_element(By.CSS_SELECTOR, "canvas.labels")
    h, w = expected.shape
    x, y = w // 2, h // 2
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(
        canvas, int((x + 0.5) * size["width"] / w - size["width"] / 2),
        int((y + 0.5) * size["height"] / h - size["height"] / 2)).perform()
    readout = card.find_element(By.CSS_SELECTOR, ".readout")
    k = int(readout.get_attribute("data-class-id"))
    px, py = (int(v) for v in readout.text.split(")")[0].strip("(").split(","))
    assert k == expected[py, px] and lip.names[k] in readout.text

    # hiding a class makes its pixels transparent on the label map and leaves the photo in the overlay
    k = int(np.unique(expected)[-1])
    ys, xs = np.nonzero(expected == k)
    card.find_element(By.CSS_SELECTOR, f".legend label[data-class-id='{k}'] input").click()
    alpha, over, photo_px = browser.execute_script(
        "const [c, o, p] = ['labels', 'overlay', 'photo'].map(n => arguments[0].querySelector('canvas.' + n));"
        "const at = (cv) => Array.from(cv.getContext('2d').getImageData(arguments[1], arguments[2], 1, 1).data);"
        "return [at(c)[3], at(o), at(p)];", card, int(xs[0]), int(ys[0]))
    assert alpha == 0 and over == photo_px

    target = os.environ.get("HUMANPARSE_SCREENSHOT") or str(tmp_path / "serve_page.png")
    # hidden class shown again for the picture
    card.find_element(By.CSS_SELECTOR, f".legend label[data-class-id='{k}'] input").click()
    assert browser.save_screenshot(target)
