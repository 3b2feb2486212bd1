"""Driving Debian's headless Chromium through /usr/bin/chromedriver (Selenium), for the
console's browser tests and its screenshots."""

from __future__ import annotations

import os
import shutil
import tempfile

from tests import system

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LAPTOP, PHONE = (1280, 900), (390, 844)


def require() -> None:
    """Go on if the browser and its driver are installed, else skip (fail in CI)."""
    system.require(os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
                   "Chromium and its driver", "chromium chromium-driver")


class Browser:
    """One headless Chromium with a fresh profile; `quit()` removes the profile."""

    def __init__(self, size=LAPTOP):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="approver-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         "--disable-default-apps", "--hide-scrollbars",
                         f"--user-data-dir={self.profile}",
                         f"--window-size={size[0]},{size[1]}"):
            options.add_argument(argument)
        # The driver path is given, so Selenium's manager never downloads anything.
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(30)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- what a person does ------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.driver.get(url)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def button(self, text: str):
        """The button (or link styled as one) whose text is `text`."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(
            By.XPATH, f"//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']")

    def fill(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def sign_in(self, base: str | None, name: str, password: str) -> None:
        """Sign in on the login page at `base` (None: the login page shown now)."""
        if base is not None:
            self.open(f"{base}/console/login")
        self.fill("input[name=name]", name)
        self.fill("input[name=password]", password)
        self.button("Sign in").click()
        self.wait_for(lambda: "/console/login" not in self.driver.current_url, "signed in")

    def wait_for(self, predicate, what: str, timeout: float = 20.0):
        """Wait (bounded) until `predicate()` is true."""
        from tests.conftest import wait_for

        try:
            return wait_for(predicate, timeout)
        except AssertionError:
            raise AssertionError(f"not {what} within {timeout}s: at "
                                 f"{self.driver.current_url}") from None

    @property
    def text(self) -> str:
        return self.find("body").text

    @property
    def title(self) -> str:
        return self.driver.title

    def wait_for_text(self, text: str, timeout: float = 20.0) -> str:
        """Wait (bounded) until the page, reloaded by itself or not, shows `text`."""
        from selenium.common.exceptions import WebDriverException

        def shown() -> str | None:
            try:
                body = self.text
            except WebDriverException:  # the page was being replaced
                return None
            return body if text in body else None

        try:
            return self.wait_for(shown, f"showing {text!r}", timeout)
        except AssertionError:
            raise AssertionError(f"{text!r} not shown within {timeout}s; the page says:\n"
                                 f"{self.text[:2000]}") from None

    def resize(self, size) -> None:
        self.driver.set_window_size(*size)

    def page_width(self) -> int:
        return self.driver.execute_script("return document.documentElement.scrollWidth")

    def screenshot(self, path) -> None:
        """The whole page as a PNG (the window grown to the page's height)."""
        width = self.driver.get_window_size()["width"]
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, max(height + 120, 400))
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.driver.save_screenshot(str(path))
