"""Every page in a real browser, opened the way a user opens it: the app started as the README
starts it, each page by its URL on a fresh server. No page may show an exception, the sidebar
names the Home page "Home", there is no "Deploy" button, and nothing is fetched from outside
this machine (the README promises no downloads at run time; a `:material/...` page icon once
made the browser fetch the tab icon from fonts.gstatic.com)."""

from __future__ import annotations

from live_browser_kit import CHROMIUM, CHROMIUM_ARGS, require_browser, streamlit_server

PAGES = ("", "Dataset", "Train", "Evaluate", "Live")  # "" is Home
SETTLE_MS = 4000  # after the page's first element, for late requests (icons, fonts)


def test_pages_open_offline_without_errors(tmp_path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    env = {"FER_RUNS_DIR": str(tmp_path / "runs"), "FER_CACHE_DIR": str(tmp_path / "cache")}
    with streamlit_server(env, tmp_path / "server.log") as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url)
                    if r.url.startswith(("http:", "https:")) and not r.url.startswith(url)
                    else None)
            for name in PAGES:
                page.goto(f"{url}/{name}")
                page.wait_for_selector("[data-testid='stSidebarNav']", timeout=60_000)
                page.wait_for_selector("h1", timeout=60_000)
                page.wait_for_timeout(SETTLE_MS)
                shown = name or "Home"
                assert page.locator("[data-testid='stException']").count() == 0, shown
                links = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
                # each link's text is its icon's ligature name, then its title
                assert links and links[0].split()[-1] == "Home", (shown, links)
                assert page.get_by_text("Deploy", exact=True).count() == 0, shown
        finally:
            browser.close()
    assert outside == [], f"requests that left this machine: {sorted(set(outside))}"
