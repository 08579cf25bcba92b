"""Opens an `ebssnap coverage --html` page in a real headless Chromium (Debian's `chromium`,
driven by Playwright through `executable_path`) and prints what it saw as one JSON object; the
Rust test (tests/it/coverage.rs) asserts on it.

usage: coverage_page.py PAGE.html VOLUME_ID
  VOLUME_ID: a volume to filter on (the filter must then show exactly its row)
"""

import json
import os
import pathlib
import sys

from playwright.sync_api import sync_playwright


def main() -> None:
    page_path = pathlib.Path(sys.argv[1]).resolve()
    volume = sys.argv[2]
    chromium = os.environ.get("EBSSNAP_CHROMIUM", "/usr/bin/chromium")
    seen = {"requests": [], "console": [], "page_errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page()
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
        page.goto(page_path.as_uri())
        page.wait_for_selector("#volumes tbody tr", state="attached")

        def visible_rows():
            return page.eval_on_selector_all(
                "#volumes tbody tr", "rs => rs.filter(r => !r.hidden).length"
            )

        def column(key):
            return page.eval_on_selector_all(
                f'#volumes tbody tr:not([hidden]) td[data-key="{key}"]',
                "cs => cs.map(c => c.textContent)",
            )

        seen["rows"] = page.eval_on_selector_all("#volumes tbody tr", "rs => rs.length")
        seen["row_volumes"] = page.eval_on_selector_all(
            "#volumes tbody tr", "rs => rs.map(r => r.dataset.volume)"
        )
        seen["bars"] = page.eval_on_selector_all(
            "#chart .bar", "bs => bs.map(b => b.dataset.volume)"
        )
        seen["bar_heights"] = page.eval_on_selector_all(
            "#chart .bar", "bs => bs.map(b => b.getBoundingClientRect().height)"
        )
        seen["cards"] = page.eval_on_selector_all(
            "#totals .card",
            "cs => Object.fromEntries(cs.map(c => [c.dataset.status, c.querySelector('.count').textContent]))",
        )
        seen["shown"] = page.text_content("#shown")

        page.fill("#filter", volume)
        seen["filter_rows"] = column("volume_id")
        page.fill("#filter", "")
        page.select_option("#status", "unprotected")
        seen["unprotected_rows"] = visible_rows()
        page.select_option("#status", "")

        page.click('th[data-key="size_gb"]')
        seen["sizes_ascending"] = [int(x) for x in column("size_gb")]
        seen["sort_state"] = page.get_attribute('th[data-key="size_gb"]', "aria-sort")
        page.click('th[data-key="size_gb"]')
        seen["sizes_descending"] = [int(x) for x in column("size_gb")]
        page.click('th[data-key="volume_id"]')
        seen["ids_ascending"] = column("volume_id")
        browser.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
