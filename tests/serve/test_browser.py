"""The web demo end to end in a real headless Chromium: ``blindsr serve`` in a subprocess, driven by selenium.

Skips (with the command that fixes it) when selenium, /usr/bin/chromium or chromedriver is missing or the browser
cannot start. Set ``BLINDSR_SERVE_SCREENSHOT=/path/shot.png`` to keep a screenshot of the page after the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blindsr.data.images import read_image_uint8

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SKIP = "no chromium/chromedriver: run scripts/install_browser.sh"
PngWriter = Callable[..., Path]  # the write_png fixture of conftest.py


def _executable(name: str) -> str | None:
    path = Path("/usr/bin") / name
    return str(path) if path.is_file() else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium with downloads going to ``tmp_path/downloads``; no network beyond the test server."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(SKIP)
    chromium, chromedriver = _executable("chromium"), _executable("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip(SKIP)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,1400",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "safebrowsing.enabled": False,
        },
    )
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must not look for drivers on the internet
    try:
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    except WebDriverException as e:
        first = (e.msg or str(e)).strip().splitlines()[0] if (e.msg or str(e)).strip() else type(e).__name__
        pytest.skip(f"{SKIP} (the browser did not start: {first})")
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(tmp_path: Path, tiny_release: Path) -> Iterator[str]:
    """``blindsr serve -m tiny-x2.safetensors`` on a free port, with its own empty TMPDIR and working directory."""
    tmp, cwd = tmp_path / "server-tmp", tmp_path / "server-cwd"
    tmp.mkdir()
    cwd.mkdir()
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "blindsr.cli.main", "serve", "--port", str(port), "-m", str(tiny_release)]
    command += ["--device", "cpu", "--log-level", "warning"]
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "api/models", timeout=2) as response:
                    json.load(response)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                log.seek(0)
                assert proc.poll() is None, f"blindsr serve exited:\n{log.read()}"
                assert time.monotonic() < deadline, f"blindsr serve did not start:\n{log.read()}"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()  # SIGTERM: uvicorn shuts down gracefully, which deletes the temporary directory
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output, output
    assert sorted(tmp.iterdir()) == [], "the server left files in its temporary directory"
    assert sorted(cwd.iterdir()) == [], "the server wrote into its working directory"


def _wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=f"timed out waiting for {what}")


def _natural_size(driver: Any, element_id: str) -> tuple[int, int]:
    width, height = driver.execute_script(
        "const i = document.getElementById(arguments[0]); return [i.complete ? i.naturalWidth : 0, i.naturalHeight];",
        element_id,
    )
    return int(width), int(height)


def _bicubic_share(driver: Any) -> float:
    """The share (%) of the comparison shown as bicubic, read back from the clip-path the page set."""
    clip = driver.execute_script("return document.getElementById('bicubic-img').style.clipPath;")
    match = re.fullmatch(r"inset\(0(?:px)? ([\d.]+)% 0(?:px)? 0(?:px)?\)", clip)
    assert match, clip
    return 100.0 - float(match.group(1))


def test_upload_compare_download_in_a_browser(browser: Any, server: str, tmp_path: Path, write_png: PngWriter) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver = browser
    find = driver.find_element
    image = write_png(tmp_path / "input" / "lake.png", 16, 24)
    bad = tmp_path / "input" / "notes.png"
    bad.write_text("not an image at all\n")

    driver.get(server)
    _wait(driver, lambda d: len(Select(find(By.ID, "model")).options) >= 1, "the model list")
    assert Select(find(By.ID, "model")).first_selected_option.get_attribute("value") == "tiny-x2"  # -m preselects
    assert [o.text for o in Select(find(By.ID, "outscale")).options] == ["x1", "x2 (native)"]
    assert "20 MB" in find(By.ID, "limits").text

    # a file that is not an image: the server's one-line message is shown on the page
    find(By.ID, "file").send_keys(str(bad))
    find(By.ID, "run").click()
    _wait(driver, lambda d: "error" in find(By.ID, "message").get_attribute("class"), "the error message")
    assert find(By.ID, "message").text.startswith("cannot read notes.png: not an image")
    assert not find(By.ID, "result").is_displayed()

    # a real image: result, bicubic preview, kernel and noise appear
    find(By.ID, "file").send_keys(str(image))
    find(By.ID, "run").click()
    _wait(driver, lambda d: find(By.ID, "result").is_displayed(), "the result")
    assert find(By.ID, "message").text.startswith("Done in")
    assert _natural_size(driver, "result-img") == (48, 32)
    assert _natural_size(driver, "bicubic-img") == (48, 32)  # same size: the slider compares like with like
    assert _natural_size(driver, "kernel-img") == (256, 256)
    assert _natural_size(driver, "noise-img")[0] > 0
    assert find(By.ID, "kernel-img").is_displayed() and find(By.ID, "noise-img").is_displayed()
    info = find(By.ID, "info").text
    assert info.startswith("24\u00d716 \u2192 48\u00d732 (x2) with tiny-x2 in") and "kernel 15\u00d715" in info

    # the slider: drag its thumb to the left, then keyboard End; the bicubic part follows
    slider = find(By.ID, "slider")
    assert _bicubic_share(driver) == pytest.approx(50)
    ActionChains(driver).click_and_hold(slider).move_by_offset(-slider.size["width"] // 3, 0).release().perform()
    dragged = float(slider.get_attribute("value"))
    assert dragged < 30
    assert _bicubic_share(driver) == pytest.approx(dragged)
    slider.send_keys(Keys.END)
    assert _bicubic_share(driver) == pytest.approx(100)
    # dragging on the picture itself moves the split too
    compare = find(By.ID, "compare")
    ActionChains(driver).move_to_element_with_offset(compare, -compare.size["width"] // 4, 0).click().perform()
    assert _bicubic_share(driver) == pytest.approx(25, abs=3)

    screenshot = os.environ.get("BLINDSR_SERVE_SCREENSHOT")
    if screenshot:
        driver.save_screenshot(screenshot)

    # the download: an attachment saved by the browser, a PNG of the result's size
    find(By.ID, "download").click()
    downloads = tmp_path / "downloads"

    def downloaded(_: Any) -> list[Path]:
        files = list(downloads.iterdir())
        return (
            [p for p in files if p.suffix == ".png"]
            if files and not any(p.suffix == ".crdownload" for p in files)
            else []
        )

    (saved,) = _wait(driver, downloaded, "the download", timeout=15)
    assert saved.name == "lake_x2.png"
    assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert tuple(read_image_uint8(saved).shape) == (3, 32, 48)

    # nothing came from anywhere but the server (the page's CSP forbids it; this checks the page obeys)
    resources = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name);")
    assert resources and all(name.startswith(server) for name in resources), resources


def test_a_transparent_result_shows_a_checkerboard_in_a_browser(browser: Any, server: str, tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By

    from blindsr.data.images import write_image

    pixels = np.zeros((16, 24, 4), np.uint8)
    pixels[..., :3] = (255, 0, 0)  # hidden under alpha 0 everywhere: nothing red may reach the screen
    image = tmp_path / "input" / "clear.png"
    write_image(image, pixels)

    driver = browser
    driver.get(server)
    _wait(driver, lambda d: d.find_element(By.ID, "model").get_attribute("value"), "the model list")
    driver.find_element(By.ID, "file").send_keys(str(image))
    driver.find_element(By.ID, "run").click()
    _wait(driver, lambda d: d.find_element(By.ID, "result").is_displayed(), "the result")
    shot = np.asarray(Image.open(io.BytesIO(driver.find_element(By.ID, "compare").screenshot_as_png)).convert("RGB"))
    inner = shot[4:-4, 4:-4].astype(int)  # inside the frame: both halves of the slider
    red = (inner[..., 0] > 150) & (inner[..., 1] < 100) & (inner[..., 2] < 100)
    assert not red.any(), "the colour under transparent pixels shows"
    levels = {tuple(p) for p in inner.reshape(-1, 3)[::7]}
    assert (255, 255, 255) in levels and len(levels) >= 2, "a two-tone checkerboard, not a flat background"
