"""The app's frame: which pages there are, their titles and icons, the page config and the
place of the dataset banner, in one place.

`app.py` calls `navigation()` on every run: it builds the sidebar from `PAGES`, sets the
page config (wide layout, the page's title and icon in the browser tab), keeps the top of
the page for the active dataset's banner (`ui.state.reserve_banner`: the page's first
`load_active_dataset()` fills it, so a page that changes the dataset first shows the new
one), then runs the page. Each page calls `page_setup(__file__)` first: under the
navigation it does nothing; a page run on its own (`AppTest.from_file("app_pages/...")`) gets
the same config and banner place from it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.state import release_banner, reserve_banner

APP_TITLE = "FER workbench"
# The browser tab's icon is a file we ship: a `:material/...` page icon makes the browser fetch
# the symbol from fonts.gstatic.com, and nothing may be downloaded at run time (the sidebar's
# material icons come from Streamlit's bundled font and need no network).
ICON = Path(__file__).parent / "assets" / "icon.png"
# Not "pages/": Streamlit treats a folder of that name beside app.py as a legacy multipage
# app until app.py first runs, so a page opened by its URL on a fresh server ran without
# the frame.
PAGES_DIR = "app_pages"


@dataclass(frozen=True)
class AppPage:
    """One page of the app, as the sidebar, the browser tab and the Home page name it."""

    path: str  # the script, from app.py's folder
    title: str  # sidebar entry, heading of the Home page's list, and URL (/Live)
    icon: str
    summary: str  # what it is for, one line on the Home page
    banner: bool  # the active dataset's banner goes above the page


PAGES = (
    AppPage(f"{PAGES_DIR}/0_Home.py", "Home", ":material/mood:",
            "what the app does and where to start", banner=False),  # shows the dataset itself
    AppPage(f"{PAGES_DIR}/1_Dataset.py", "Dataset", ":material/dataset:",
            "point the app at your fer2013.csv (or use the demo set) and look at the data",
            banner=True),
    AppPage(f"{PAGES_DIR}/2_Train.py", "Train", ":material/model_training:",
            "pick a model and hyperparameters, start a run, follow its curves",
            banner=True),
    AppPage(f"{PAGES_DIR}/3_Evaluate.py", "Evaluate", ":material/analytics:",
            "accuracy, per-class scores, confusion matrix, mistakes and Grad-CAM of a run",
            banner=True),
    AppPage(f"{PAGES_DIR}/4_Live.py", "Live", ":material/videocam:",
            "detect faces on your webcam and classify their expression",
            banner=False),  # never loads the dataset: nothing to show
    AppPage(f"{PAGES_DIR}/5_Analyse.py", "Analyse", ":material/movie:",
            "emotions of every face in a recorded video or a folder of photos, as a table",
            banner=False),
)
HOME = PAGES[0]

_navigating = threading.local()  # set while app.py's navigation runs a page (script thread)


def navigation() -> None:
    """Run the page the browser asked for inside the frame (called by app.py)."""
    st_pages = [st.Page(p.path, title=p.title, icon=p.icon, default=p is HOME) for p in PAGES]
    # the tab icon before the navigation: else the browser takes the page's material icon
    st.set_page_config(page_icon=str(ICON), layout="wide")
    current = st.navigation(st_pages)
    page = next((p for p, s in zip(PAGES, st_pages) if s is current), HOME)
    _setup(page)
    _navigating.active = True
    try:
        current.run()
    finally:
        _navigating.active = False
        release_banner()


def page_setup(script: str) -> None:
    """Page config and banner place for a page run on its own; nothing under navigation."""
    if getattr(_navigating, "active", False):
        return
    name = Path(script).name
    _setup(next(p for p in PAGES if Path(p.path).name == name))


def _setup(page: AppPage) -> None:
    title = APP_TITLE if page is HOME else f"{page.title} · {APP_TITLE}"
    st.set_page_config(page_title=title, page_icon=str(ICON), layout="wide")
    if page.banner:
        reserve_banner()
    else:
        release_banner()
