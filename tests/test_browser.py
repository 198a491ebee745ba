"""The pages in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium), against `lambdasette serve` and against `scripts/local-cloud` (the
deployed shape: moto's DynamoDB holds the sessions, the real Lambda handlers answer).

One person's whole errand: sign in, create a token restricted to one table that expires in
an hour, use it from the API, see "last used" change, revoke it, see the API refuse it,
sign out - and the explorer, with zero CSP violations on every page. Screenshots go to
$LAMBDASETTE_SCREENSHOTS (or the test's temporary folder): look at them.

Without chromium these tests are skipped, except under `scripts/test`
(LAMBDASETTE_BROWSER_TESTS=required), where the setup installs it and its absence fails.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_cli_serve import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars"]
# Runs before any page script, outside the page's CSP (injected over CDP): records every
# Content-Security-Policy violation, so a test can require there were none.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
});
"""

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("LAMBDASETTE_BROWSER_TESTS") == "required":
        raise RuntimeError("chromium and chromedriver are needed for the browser tests: scripts/setup --browser "
                           "installs them (as root), or apt-get install -y chromium chromium-driver")
    pytest.skip("no chromium/chromedriver (scripts/setup --browser installs them)", allow_module_level=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("LAMBDASETTE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A path to the driver: Selenium Manager (which would download one) never runs.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CSP})
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, css: str, timeout: float = 20) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_until(probe: Any, timeout: float = 20) -> Any:
    """`probe()`'s first truthy value (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def click(driver: Any, element: Any) -> bool:
    """Click `element` once it is in view (True: clicked; an intercepted click raises)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()
    return True


def shot(driver: Any, path: Path) -> None:
    """A screenshot of the whole page (up to 3,000 px tall), not just the window."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 3000), "scale": 1}})
    path.write_bytes(base64.b64decode(data["data"]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def settled(driver: Any, css: str, expected: Any, timeout: float = 20) -> str:
    """The text of `css` once `expected(text)` holds - after a click or a reload the old page
    may still be there for a moment (its elements then go stale)."""
    from selenium.webdriver.common.by import By

    return wait_until(lambda: (lambda t: t if expected(t) else None)(
        driver.find_element(By.CSS_SELECTOR, css).text), timeout)


def text_of(driver: Any, css: str) -> str:
    return wait_for(driver, css).text


def no_problems(driver: Any) -> None:
    """No CSP violation, no console error on the page now shown."""
    assert driver.execute_script("return window.__csp || []") == []
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def api(base: str, path: str, token: str) -> int:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def errand(driver: Any, base: str, root_token: str, shots: Path, prefix: str) -> dict[str, float]:
    """The whole errand in the browser; what each part took (seconds)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    took: dict[str, float] = {}
    start = time.monotonic()

    # A private instance sends the browser to sign in, and back where it was going.
    driver.get(base + "/demo/trees?_size=20")
    wait_for(driver, "#token")
    assert "/-/login?next=" in driver.current_url
    shot(driver, shots / f"{prefix}-1-sign-in.png")
    driver.find_element(By.ID, "token").send_keys(root_token)
    driver.find_element(By.ID, "sign-in-button").click()
    assert text_of(driver, "#who-actor") == "root"
    assert driver.current_url == base + "/demo/trees?_size=20"
    cookie = driver.get_cookie("ls_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert root_token not in cookie["value"] and len(cookie["value"]) == 43
    assert driver.execute_script("return document.cookie").find("ls_session") == -1  # HttpOnly
    assert len(driver.find_elements(By.CSS_SELECTOR, "#rows tbody tr")) == 20
    assert wait_for(driver, "#next-page").get_attribute("href").startswith(base + "/demo/trees?")
    shot(driver, shots / f"{prefix}-2-table.png")
    no_problems(driver)
    took["sign in"] = time.monotonic() - start

    # Create a token restricted to view-table on demo/trees, expiring in an hour.
    start = time.monotonic()
    driver.get(base + "/-/api/tokens")
    wait_for(driver, "#create-token").click()
    wait_for(driver, "#description").send_keys("Read trees, for an hour")
    driver.find_element(By.ID, "expiry-after").click()
    amount = driver.find_element(By.ID, "expiry-amount")
    amount.clear()
    amount.send_keys("1")
    Select(driver.find_element(By.ID, "expiry-unit")).select_by_value("hours")
    driver.find_element(By.ID, "scope-restricted").click()
    trees = driver.find_element(By.CSS_SELECTOR, 'input[value="r:demo:trees:view-table"]')
    trees.find_element(By.XPATH, "./ancestor::details[1]/summary").click()  # open the table's section
    trees.click()
    summary = text_of(driver, "#summary")
    assert "view-table on demo/trees" in summary and "1 hour after it is created" in summary, summary
    shot(driver, shots / f"{prefix}-3-create-token.png")
    no_problems(driver)
    driver.find_element(By.ID, "create").click()

    # The secret, shown once, with a copy button that puts exactly it on the clipboard.
    secret = text_of(driver, "#secret")
    assert secret.startswith("lstok_")
    origin = base.rstrip("/")
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    driver.find_element(By.ID, "copy").click()
    settled(driver, "#copy", lambda t: t in ("Copied", "Select and copy it by hand"))
    copied = driver.execute_async_script(
        "var done = arguments[0]; navigator.clipboard.readText().then(done, function (e) { done(String(e)); });")
    assert copied == secret
    shot(driver, shots / f"{prefix}-4-token-created.png")
    no_problems(driver)
    assert secret not in driver.current_url
    driver.find_element(By.ID, "token-link").click()
    assert text_of(driver, "#last-used").startswith("never")
    took["create a token"] = time.monotonic() - start

    # Use it from the API: the table it may read, and nothing else.
    start = time.monotonic()
    assert api(base, "/demo/trees.json?_size=1", secret) == 200
    assert api(base, "/demo/cities.json?_size=1", secret) == 403
    driver.refresh()
    settled(driver, "#last-used", lambda t: t.startswith("just now"))
    assert text_of(driver, "#status") == "active"
    driver.get(base + "/-/api/tokens")
    row = wait_for(driver, f'tr[data-token-id="{driver_token_id(secret)}"]')
    assert "Read trees, for an hour" in row.text and "view-table on demo/trees" in row.text
    assert row.find_element(By.CSS_SELECTOR, ".last-used").text == "just now"
    shot(driver, shots / f"{prefix}-5-tokens.png")
    no_problems(driver)

    # Revoke it: the API refuses it from the next request on.
    row.find_element(By.CSS_SELECTOR, "a").click()
    wait_for(driver, "#revoke").click()
    settled(driver, "#status", lambda t: t == "revoked")
    shot(driver, shots / f"{prefix}-6-revoked.png")
    assert api(base, "/demo/trees.json?_size=1", secret) == 401
    took["use and revoke"] = time.monotonic() - start

    # Sign out: the session is over, and the instance private again.
    start = time.monotonic()
    wait_for(driver, "#sign-out").click()
    wait_for(driver, "#token")  # "/" sends a signed-out browser to sign in
    assert driver.get_cookie("ls_session") is None
    driver.get(base + "/demo")
    wait_for(driver, "#token")
    no_problems(driver)
    took["sign out"] = time.monotonic() - start
    return took


def driver_token_id(secret: str) -> str:
    return secret[len("lstok_"):].split("_", 1)[0]


def explorer(driver: Any, base: str, root_token: str, shots: Path, prefix: str) -> None:
    """Swagger UI under the strict CSP: it renders this caller's document and runs a request
    with the session; a POST from the page carries the CSRF token and works."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/-/login")
    wait_for(driver, "#token").send_keys(root_token)
    driver.find_element(By.ID, "sign-in-button").click()
    wait_for(driver, "#who-actor")
    driver.get(base + "/-/api#/demo%3A%20trees")
    path = wait_for(driver, '.opblock-get .opblock-summary-path[data-path="/demo/trees.json"]', timeout=90)
    operation = path.find_element(By.XPATH, "./ancestor::div[contains(@class, 'opblock ')][1]")
    if "is-open" not in operation.get_attribute("class"):
        # The tag's section may still be sliding open: a click the browser would give to it
        # instead is tried again.
        wait_until(lambda: click(driver, path), 30)
    size = wait_until(lambda: operation.find_element(By.CSS_SELECTOR, 'tr[data-param-name="_size"] input'))
    size.send_keys("3")
    wait_until(lambda: click(driver, operation.find_element(By.CSS_SELECTOR, ".execute")), 30)
    status = wait_until(lambda: operation.find_element(
        By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status").text, 60)
    assert status.startswith("200"), (status, operation.find_element(By.CSS_SELECTOR, ".request-url").text,
                                       operation.find_element(By.CSS_SELECTOR, ".live-responses-table").text)
    shot(driver, shots / f"{prefix}-7-explorer.png")
    no_problems(driver)
    # The page's own POST (as the explorer sends it): the cookie and the CSRF token from <meta>.
    result = driver.execute_async_script("""
        var done = arguments[0];
        var csrf = document.querySelector('meta[name="csrf-token"]').content;
        var body = JSON.stringify({row: {title: 'from the explorer', body: 'hello'}});
        fetch('/demo/notes/-/insert', {method: 'POST', headers: {'X-CSRF-Token': csrf,
              'Content-Type': 'application/json'}, body: body})
          .then(function (r) { return fetch('/demo/notes/-/insert', {method: 'POST', body: body})
            .then(function (r2) { done([r.status, r2.status]); }); })
          .catch(function (e) { done(String(e)); });
    """)
    assert result == [201, 403], result  # without the CSRF header: refused


def start_serve(tmp: Path) -> tuple[subprocess.Popen, str, str]:
    from lambdasette.demo import create_demo

    demo = create_demo(tmp / "demo.db")
    tokens_db = str(tmp / "tokens.db")
    cli = [sys.executable, "-m", "lambdasette.cli"]
    root = subprocess.run([*cli, "token", "create", "root", "--description", "browser test",
                           "--tokens-db", tokens_db], capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", str(demo), "--port", str(port), "--tokens-db", tokens_db],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_answering(base, proc, 30)
    return proc, base, root


def wait_answering(base: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base + "/-/versions.json", timeout=5)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start") from None
            time.sleep(0.1)


def test_the_errand_in_a_browser(browser: Any, shots: Path, tmp_path: Path) -> None:
    proc, base, root = start_serve(tmp_path)
    try:
        start = time.monotonic()
        took = errand(browser, base, root, shots, "serve")
        explorer(browser, base, root, shots, "serve")
        print(f"\nbrowser errand (lambdasette serve): {time.monotonic() - start:.1f} s "
              f"{json.dumps({k: round(v, 2) for k, v in took.items()})}; screenshots in {shots}")
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_errand_through_the_local_cloud(browser: Any, shots: Path, tmp_path: Path) -> None:
    from lambdasette.demo import create_demo

    demo = create_demo(tmp_path / "demo.db")
    port = free_port()
    proc = subprocess.Popen([str(ROOT / "scripts/local-cloud"), str(demo), "--port", str(port), "--root-token",
                             "--state-dir", str(tmp_path / "state"), "--read-workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        root = None
        deadline = time.monotonic() + 180
        for line in proc.stdout:
            if line.startswith("Root token: "):
                root = line.split()[-1]
            if line.startswith("local-cloud: API on"):
                break
            assert time.monotonic() < deadline, "local-cloud did not start"
        assert root, "no root token printed"
        base = f"http://127.0.0.1:{port}"
        wait_answering(base, proc, 60)
        start = time.monotonic()
        took = errand(browser, base, root, shots, "local-cloud")
        explorer(browser, base, root, shots, "local-cloud")
        print(f"\nbrowser errand (local cloud): {time.monotonic() - start:.1f} s "
              f"{json.dumps({k: round(v, 2) for k, v in took.items()})}; screenshots in {shots}")
    finally:
        proc.terminate()
        proc.wait(30)
