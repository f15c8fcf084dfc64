"""Headless Chromium (Debian's package) driven by Playwright for the web export's tests: software WebGL
(SwiftShader through ANGLE) where there is no GPU, screenshots as arrays, console errors collected."""

from __future__ import annotations

import io
import os
import shutil
from contextlib import contextmanager
from typing import Iterator, List

import numpy as np
import pytest

CHROMIUM_FLAGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def chromium_path() -> str:
    """Debian's chromium; skipped where it is missing, except in CI (FOURREAL_REQUIRE_SHARED=1: `make test` installs
    it with apt, Makefile `system-deps`)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium on PATH: `make system-deps` (apt-get install chromium) installs it"
        if os.environ.get("FOURREAL_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


class Page:
    def __init__(self, page) -> None:
        self.page = page
        self.errors: List[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, url: str, timeout_ms: float = 120_000) -> None:
        self.page.goto(url)
        self.page.wait_for_function("window.fourreal && (window.fourreal.frames > 0 || window.fourreal.error)",
                                    timeout=timeout_ms)  # fmt: skip
        error = self.page.evaluate("window.fourreal.error")
        assert error is None, f"the page failed: {error}; console: {self.errors}"

    def frames(self) -> int:
        return int(self.page.evaluate("window.fourreal.frames"))

    def screenshot(self, settle_frames: int = 6, max_tries: int = 8) -> np.ndarray:
        """The canvas once it has stopped changing (Spark sorts the splats asynchronously, a frame or two behind)."""
        from PIL import Image

        previous = None
        for _ in range(max_tries):
            start = self.frames()
            self.page.wait_for_function(f"window.fourreal.frames >= {start + settle_frames}", timeout=60_000)
            image = np.asarray(Image.open(io.BytesIO(self.page.locator("#canvas").screenshot())).convert("RGB"))
            if previous is not None and np.array_equal(image, previous):
                return image
            previous = image
        return previous

    def move_time_slider(self, value: float) -> None:
        """What a user's drag of the slider does: set its value and fire its `input` event."""
        self.page.evaluate("""(value) => { const slider = document.getElementById('time');
            slider.value = value; slider.dispatchEvent(new Event('input')); }""", value)

    def drag(self, dx: float, dy: float) -> None:
        box = self.page.locator("#canvas").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        for step in range(1, 11):
            self.page.mouse.move(x + dx * step / 10, y + dy * step / 10)
        self.page.mouse.up()


@contextmanager
def chromium_page(width: int, height: int) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield Page(browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1))
        finally:
            browser.close()
