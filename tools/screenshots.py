"""Remake the README's screenshots (docs/*.png) in headless Chromium:

    .venv/bin/python tools/screenshots.py [docs]

It serves the demo database with a few tokens of every status (`lambdasette serve`, a
temporary token store), signs in as root and photographs the table page, the API tokens
page, the create form and the API explorer. Needs chromium and chromedriver (scripts/setup
--browser).
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lambdasette.auth import tokens
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.demo import create_demo


def shot(driver: Any, path: Path, height: int) -> None:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], height), "scale": 1}})
    path.write_bytes(base64.b64decode(data["data"]))
    print(f"wrote {path}")


def main(out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    demo = create_demo(work / "demo.db")
    store = LocalTokenStore(work / "tokens.db")
    root, root_record = tokens.create(store, "root", description="Admin, made with the CLI")
    now = int(time.time())
    _, export = tokens.create(store, "root", {"r": {"demo": {"trees": ["vt"], "species": ["vt"]}}},
                              30 * 86400, parent=root_record,
                              description="Nightly export to the data warehouse")
    store.touch(export.id, now - 3 * 60)
    _, ci = tokens.create(store, "root", {"r": {"demo": {"notes": ["vt", "ir", "ur"]}}}, 86400,
                          parent=root_record, description="CI: publish release notes")
    store.touch(ci.id, now - 2 * 3600)
    _, old = tokens.create(store, "root", {"d": {"demo": ["vd", "vt", "es"]}}, 3600, parent=root_record,
                           description="Notebook session, last week")
    _, leaked = tokens.create(store, "root", {"a": ["vt"]}, None, parent=root_record,
                              description="Pasted into a chat by mistake")
    store.revoke(leaked.id, now - 26 * 3600)
    store.close()
    conn = sqlite3.connect(work / "tokens.db")  # age the notebook's token: it expired days ago
    with conn:
        conn.execute("update tokens set created = ?, expires = ?, last_used = ? where id = ?",
                     (now - 6 * 86400, now - 6 * 86400 + 3600, now - 6 * 86400 + 1800, old.id))
    conn.close()

    port = 8765
    server = subprocess.Popen([sys.executable, "-m", "lambdasette.cli", "serve", str(demo),
                               "--port", str(port), "--tokens-db", str(work / "tokens.db")],
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/-/versions.json")
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    options = webdriver.ChromeOptions()
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--window-size=1280,820", f"--user-data-dir={work / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 90)
    try:
        driver.get(base + "/-/login")
        wait.until(ec.visibility_of_element_located((By.ID, "token"))).send_keys(root)
        driver.find_element(By.ID, "sign-in-button").click()
        wait.until(ec.visibility_of_element_located((By.ID, "who-actor")))
        driver.get(base + "/demo/trees?_size=12&_sort_desc=height_m")
        shot(driver, out / "table-page.png", 820)
        driver.get(base + "/-/api/tokens")
        shot(driver, out / "api-tokens.png", 560)
        driver.get(base + "/-/api/tokens/create")
        description = wait.until(ec.visibility_of_element_located((By.ID, "description")))
        description.send_keys("Read trees, for an hour")
        driver.find_element(By.ID, "expiry-after").click()
        Select(driver.find_element(By.ID, "expiry-unit")).select_by_value("hours")
        driver.find_element(By.ID, "scope-restricted").click()
        box = driver.find_element(By.CSS_SELECTOR, 'input[value="r:demo:trees:view-table"]')
        box.find_element(By.XPATH, "./ancestor::details[1]/summary").click()
        box.click()
        driver.find_element(By.CSS_SELECTOR, 'input[value="r:demo:trees:insert-row"]').click()
        shot(driver, out / "create-token.png", 1300)
        driver.get(base + "/-/api#/demo%3A%20trees")
        path = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, '.opblock-get .opblock-summary-path[data-path="/demo/trees.json"]')))
        operation = path.find_element(By.XPATH, "./ancestor::div[contains(@class, 'opblock ')][1]")
        driver.execute_script("arguments[0].click();", path)  # the tag's section may still be opening
        wait.until(lambda d: operation.find_elements(By.CSS_SELECTOR, 'tr[data-param-name="_size"] input'))
        operation.find_element(By.CSS_SELECTOR, 'tr[data-param-name="_size"] input').send_keys("2")
        shape = operation.find_element(By.CSS_SELECTOR, 'tr[data-param-name="_shape"] select')
        Select(shape).select_by_value("objects")
        driver.execute_script("arguments[0].click();", operation.find_element(By.CSS_SELECTOR, ".execute"))
        wait.until(lambda d: operation.find_elements(By.CSS_SELECTOR, ".live-responses-table tr.response"))
        driver.execute_script("document.querySelector('h1').scrollIntoView()")
        shot(driver, out / "api-explorer.png", 1100)
    finally:
        driver.quit()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    target.mkdir(parents=True, exist_ok=True)
    main(target)
