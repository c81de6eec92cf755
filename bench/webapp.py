"""The Mini App's weight and its time to first render on a slow phone.

    make webapp chromium && .venv/bin/python -m bench.webapp [--runs 5] [--throttle 4]

1. Size: the JavaScript and CSS that ``webapp/dist/index.html`` loads for the
   first screen (its module script, module preloads and stylesheets; not the
   operator pages' lazy chunk, not Telegram's own telegram-web-app.js),
   gzipped at level 9 as a CDN would serve them. Budget: 60 KB in all.
2. Time to first render: ``local.stack`` (what ``make run`` runs) on free
   loopback ports, and a fresh headless Chromium context per run (empty
   cache) with the CPU slowed down ``--throttle`` times through CDP
   (``Emulation.setCPUThrottlingRate``), opening the development user's
   link. Reported, as the median of the runs:
   * first contentful paint (the browser's ``first-contentful-paint``);
   * first render: the app has put its first screen into the page;
   * balance shown: the first screen with the user's data from the API.
   A new user is registered in each run, as on a first open.

Exit status 0 only if the first screen is within the budget.
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bench.load import LocalStack, free_port, stack_environment

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "webapp" / "dist"
BUDGET_BYTES = 60 * 1024
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Records, in page time, when the app first rendered and when the balance appeared.
MARKS_SCRIPT = """
(() => {
  const marks = (window.__marks = {});
  new MutationObserver(() => {
    const root = document.getElementById("app");
    if (root && root.firstChild && !marks.render) marks.render = performance.now();
    if (document.querySelector(".balance") && !marks.balance) marks.balance = performance.now();
  }).observe(document, { childList: true, subtree: true });
})();
"""


class _FirstScreenAssets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("type") == "module" and found.get("src"):
            self.paths.append(str(found["src"]))
        if tag == "link" and found.get("rel") in ("stylesheet", "modulepreload") and found.get("href"):
            self.paths.append(str(found["href"]))


def first_screen_sizes(dist: Path = DIST) -> list[tuple[str, int, int]]:
    """``(file, bytes, gzipped bytes)`` for each JS and CSS file the first screen loads."""
    parser = _FirstScreenAssets()
    parser.feed((dist / "index.html").read_text())
    sizes = []
    for url in parser.paths:
        if not re.match(r"^/app/", url):
            continue  # not ours (Telegram's script is loaded with a plain <script>)
        data = (dist / url.removeprefix("/app/")).read_bytes()
        sizes.append((url.removeprefix("/app/"), len(data), len(gzip.compress(data, compresslevel=9))))
    return sizes


def measure_render(link: Callable[[], str], runs: int, throttle: float) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 390, "height": 844})
            context.add_init_script(MARKS_SCRIPT)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            page.goto(link())
            page.wait_for_selector(".balance", timeout=60000)
            marks: dict[str, Any] = page.evaluate(
                """() => ({
                  fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
                  render: window.__marks.render, balance: window.__marks.balance })"""
            )
            results.append({name: float(value) for name, value in marks.items()})
            context.close()
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--throttle", type=float, default=4.0)
    args = parser.parse_args(argv)
    if not (DIST / "index.html").is_file():
        print("webapp/dist is missing: run `make webapp` first", file=sys.stderr)
        return 2

    sizes = first_screen_sizes()
    total = sum(zipped for _, _, zipped in sizes)
    print("First screen (what index.html loads), gzip -9:")
    for name, raw, zipped in sizes:
        print(f"  {name:40} {raw / 1024:7.1f} KB  -> {zipped / 1024:6.1f} KB gzipped")
    verdict = "within" if total <= BUDGET_BYTES else "OVER"
    print(f"  total {total / 1024:.1f} KB gzipped, {verdict} the budget of {BUDGET_BYTES // 1024} KB")

    port, aws_port = free_port(), free_port()
    env = stack_environment(port, aws_port)
    env["NANOGEN_TELEGRAM_JS"] = "local"  # loopback only: the local stand-in for telegram-web-app.js
    with tempfile.TemporaryDirectory() as scratch:
        stack = LocalStack(port=port, aws_port=aws_port, env=env, log_path=Path(scratch) / "stack.log")
        stack.start()
        try:
            from chalicelib.auth import sign_init_data
            from chalicelib.config import load_settings
            from local.stack import mini_app_link

            token = load_settings(env).telegram_bot_token
            user_ids = iter(range(900000000, 900001000))

            def link() -> str:
                user = {"id": next(user_ids), "first_name": "Bench", "language_code": "en"}
                return mini_app_link(port, sign_init_data(user, token, auth_date=int(time.time())))

            results = measure_render(link, args.runs, args.throttle)
        finally:
            stack.stop()

    print(f"\nTime to first render, headless Chromium, CPU x{args.throttle:g} slower, loopback, {args.runs} runs:")
    for name, label in (("fcp", "first contentful paint"), ("render", "first render"), ("balance", "balance shown")):
        values = [run[name] for run in results]
        spread = f"(min {min(values):.0f}, max {max(values):.0f})"
        print(f"  {label:24} median {statistics.median(values):6.0f} ms   {spread}")
    print(f"\nreproduce: .venv/bin/python -m bench.webapp --runs {args.runs} --throttle {args.throttle:g}")
    return 0 if total <= BUDGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
