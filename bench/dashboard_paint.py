"""First paint of every dashboard page in headless Chromium, with 2,000 and with 1.4M products (issue #12: each
page within 3 s at the dataset's size), the small size being the baseline measured in the same run.

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.dashboard_paint [--sizes 2000 1400000]
        [--pages overview categories products trends pipeline browser] [--repeats 3] [--keep] [--reuse]

Per size: the generator's products with a price history (bench/serving_data.py: 30 % re-priced over 5 days,
248 categories) are loaded straight into MongoDB, into a database of their own (`bench_paint_<size>`) on the
local stack's MongoDB server (started if nothing runs, stopped at the end if this started it), in the
catalog's shapes, with gold computed by the job's own Spark functions. Then `streamlit run dashboard/app.py`
starts on that database (port 18601) and every page is visited once (not counted: Streamlit's imports and
Chromium's cache of the app's scripts are warm after it, as for any visitor but the first). `--keep` leaves
the databases; `--reuse` paints on a kept one of the same size instead of generating and loading again (its
pipeline_events and quarantine re-stamped to now, so the Pipeline page's last hour is not empty).

First paint: from navigation start to the first animation frame in which the page's main content (PAGES,
a CSS selector per page) is in the document and Streamlit's status widget does not say "Running...". On the
chart pages that is the first chart drawn: Vega-Lite's SVG (st.altair_chart). The charts were Plotly until
its bundle (4.8 MB of JS, loaded and compiled in every new tab) kept them at 3.7-5.0 s at any size. A
script installed in the tab before the page's own (Chrome DevTools `Page.addScriptToEvaluateOnNewDocument`)
checks on every frame and keeps `performance.now()`, so WebDriver's polling adds nothing. Each measurement
opens a new tab after the dashboard's cached reads have expired (dashboard/common.py CACHE_SECONDS, 3 s): a
visitor's first paint, every query sent to MongoDB. Best of `--repeats` per page.

Printed: per size the generation and load seconds, documents per collection and the MongoDB server's peak
resident memory (its process tree, sampled every 0.5 s while loading and painting); then per page the first
paint at each size, the ratio of the largest to the smallest, whether the largest is within 3 s, and when the
page's title (st.title: the app shell, before any query) showed in that best visit at the largest size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bench.serving_data import load_serving_database, restamp_recent, write_inputs
from lakehouse import catalog
from lakehouse.mongo import serving_db
from lakehouse.settings import PROJECT_ROOT, Settings, load_settings
from spark_jobs.session import build_spark
from stack.chromium import headless_chromium
from stack.mongo import mongo_ping
from stack.processes import Poller
from stack.services import LocalStack, process_tree_rss

BENCH_DIR = PROJECT_ROOT / "var" / "bench" / "dashboard_paint"
DASHBOARD_PORT = 18601
TARGET_SECONDS = 3.0
PAINT_TIMEOUT_SECONDS = 60.0
# dashboard/common.py keeps a query's result CACHE_SECONDS (3 s); a measurement waits this long after the last.
CACHE_EXPIRY_SECONDS = 4.0
# A chart drawn: Streamlit renders Vega-Lite as SVG, whose `marks` root appears once Vega has drawn the view.
CHART = '[data-testid="stVegaLiteChart"] svg.marks'


@dataclass(frozen=True)
class Page:
    """A dashboard page: its url path ("" is the default page) and the CSS selector of its main content."""

    path: str
    selector: str
    content: str


PAGES: dict[str, Page] = {
    "overview": Page("", CHART, "first chart"),
    "categories": Page("categories", CHART, "first chart"),
    "products": Page("products", '[data-testid="stTextInput"] input', "search box"),
    "trends": Page("trends", CHART, "first chart"),
    "pipeline": Page("pipeline", CHART, "first chart"),
    "browser": Page("browser", '[data-testid="stExpander"]', "first document"),
}

# Runs in the tab before any script of the page: on every frame, is the content there and the app idle? It
# also keeps when the page's title (st.title, the app shell drawn) first showed, to tell the two costs apart.
PAINT_PROBE = """
(() => {
  const content = %s;
  const running = () => {
    const status = document.querySelector('[data-testid="stStatusWidget"]');
    return status !== null && status.innerText.includes('Running');
  };
  const check = () => {
    if (window.__titleShown === undefined && document.querySelector('h1')) window.__titleShown = performance.now();
    if (document.querySelector(content) && !running()) { window.__firstPaint = performance.now(); return; }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""
FAILED_PAGE = '[data-testid="stException"], [data-testid="stAlertContentError"]'


@dataclass
class SizeRun:
    """One size's figures: seconds to generate the CSVs and to load MongoDB, documents per collection, the
    MongoDB server's peak resident bytes, and per page the first paints in seconds (None: no paint within
    PAINT_TIMEOUT_SECONDS, or the page showed an error)."""

    products: int
    reused: bool = False
    generate_seconds: float = 0.0
    load_seconds: float = 0.0
    documents: dict[str, int] = field(default_factory=dict)
    mongo_peak_bytes: int = 0
    paints: dict[str, list[Paint]] = field(default_factory=dict)

    def best(self, page: str) -> Paint | None:
        """The visit with the fastest content paint (None when no visit painted)."""
        painted = [paint for paint in self.paints.get(page, []) if paint.content is not None]
        return min(painted, key=lambda paint: paint.content or 0.0) if painted else None


class PeakMemory(Poller):
    """Peak resident memory of a process tree (a pid file's process), sampled every 0.5 s while running."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(0.5)
        self.pid = pid
        self.peak = 0

    def poll(self) -> None:
        if self.pid is not None:
            self.peak = max(self.peak, process_tree_rss(self.pid))


@dataclass(frozen=True)
class Paint:
    """One visit: seconds from navigation start to the first paint of the main content (None: none within
    PAINT_TIMEOUT_SECONDS, or the page showed an error) and to the page's title showing."""

    content: float | None
    title: float | None


def paint_seconds(browser: webdriver.Chrome, url: str, page: Page) -> Paint:
    """Open `url` in a new tab and time its first paint."""
    first_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    try:
        browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": PAINT_PROBE % json.dumps(page.selector)}
        )
        browser.get(url)
        try:
            WebDriverWait(browser, PAINT_TIMEOUT_SECONDS, poll_frequency=0.1).until(
                lambda b: b.execute_script("return window.__firstPaint ?? null") is not None
            )
        except TimeoutException:
            return Paint(None, _seconds(browser.execute_script("return window.__titleShown ?? null")))
        content, title = browser.execute_script("return [window.__firstPaint, window.__titleShown ?? null]")
        failed = bool(browser.find_elements(By.CSS_SELECTOR, FAILED_PAGE))
        return Paint(None if failed else _seconds(content), _seconds(title))
    finally:
        browser.close()
        browser.switch_to.window(first_tab)


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


@contextmanager
def dashboard_on(config: Settings) -> Iterator[str]:
    """Streamlit on `config`'s database; yields its base url and stops it after."""
    stack = LocalStack(config, instance="paint")
    stack.start_dashboard()
    try:
        yield f"http://127.0.0.1:{config.dashboard_port}/"
    finally:
        stack.process("dashboard").stop()


def measure_pages(config: Settings, pages: list[str], repeats: int) -> dict[str, list[Paint]]:
    """Every page visited once (warm-up, not counted), then `repeats` rounds of first paints, each after the
    dashboard's cached reads expired."""
    paints: dict[str, list[Paint]] = {name: [] for name in pages}
    profile = Path(tempfile.mkdtemp(prefix="paint-profile-"))
    browser = headless_chromium(profile)
    try:
        with dashboard_on(config) as base_url:
            for name in pages:
                paint_seconds(browser, base_url + PAGES[name].path, PAGES[name])
            for _ in range(repeats):
                for name in pages:
                    time.sleep(CACHE_EXPIRY_SECONDS)
                    paints[name].append(paint_seconds(browser, base_url + PAGES[name].path, PAGES[name]))
                    paint = paints[name][-1]
                    print(f"  {name}: {_shown(paint.content)} (title at {_shown(paint.title)})", flush=True)
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return paints


def run_size(
    stack: LocalStack, products: int, pages: list[str], repeats: int, seed: int, keep: bool, reuse: bool = False
) -> SizeRun:
    config = load_settings(mongo_db=f"bench_paint_{products}", dashboard_port=DASHBOARD_PORT, spark_driver_memory="3g")
    run = SizeRun(products)
    if reuse and (kept := kept_documents(config, products)):
        run.reused, run.documents = True, kept
        print(f"{products:,} products: reusing the kept database {config.mongo_db}", flush=True)
        restamp_recent(serving_db(config), config, seed)
        with PeakMemory(stack.mongo.process.pid()) as memory:
            run.paints = measure_pages(config, pages, repeats)
        run.mongo_peak_bytes = memory.peak
        return run
    folder = BENCH_DIR / f"data-{products}"
    started = time.monotonic()
    inputs = write_inputs(folder, products, seed)
    run.generate_seconds = time.monotonic() - started
    print(f"{products:,} products: CSVs generated in {run.generate_seconds:.1f}s; loading MongoDB ...", flush=True)
    with PeakMemory(stack.mongo.process.pid()) as memory:
        spark = build_spark("bench-dashboard-paint", config)
        started = time.monotonic()
        try:
            run.documents = load_serving_database(spark, serving_db(config), inputs, config, folder, seed)
        finally:
            spark.stop()
        run.load_seconds = time.monotonic() - started
        print(_load_line(run), flush=True)
        run.paints = measure_pages(config, pages, repeats)
    run.mongo_peak_bytes = memory.peak
    if not keep:
        serving_db(config).client.drop_database(config.mongo_db)
        shutil.rmtree(folder, ignore_errors=True)
    return run


def kept_documents(config: Settings, products: int) -> dict[str, int] | None:
    """Documents per collection of a database kept by an earlier `--keep` run of this size, None when there is
    none (or it holds another number of products)."""
    db = serving_db(config)
    names = db.list_collection_names()
    counts = {name: db[name].estimated_document_count() for name in names}
    return counts if counts.get(catalog.PRODUCTS.name) == products else None


def _load_line(run: SizeRun) -> str:
    counts = ", ".join(f"{name} {count:,}" for name, count in run.documents.items())
    total = sum(run.documents.values())
    return f"{run.products:,} products: loaded {total:,} documents in {run.load_seconds:.1f}s ({counts})"


def _shown(seconds: float | None) -> str:
    return "no paint" if seconds is None else f"{seconds:.2f} s"


def print_table(runs: list[SizeRun], pages: list[str]) -> None:
    small, large = runs[0], runs[-1]
    sizes = " | ".join(f"{run.products:,} products" for run in runs)
    print(f"\n| page (main content) | {sizes} | ratio {large.products:,} / {small.products:,} ", end="")
    print(f"| within {TARGET_SECONDS:.0f} s at {large.products:,} | title shown at {large.products:,} |")
    print("|---" * (len(runs) + 4) + "|")
    for name in pages:
        best = [run.best(name) for run in runs]
        figures = [paint.content if paint else None for paint in best]
        first, last = figures[0], figures[-1]
        ratio = f"{last / first:.2f}" if first and last else "n/a"
        within = "n/a" if last is None else ("yes" if last <= TARGET_SECONDS else "NO")
        title = _shown(best[-1].title) if best[-1] else "n/a"
        label = f"{name} (`/{PAGES[name].path}`, {PAGES[name].content})"
        print(f"| {label} | " + " | ".join(_shown(f) for f in figures) + f" | {ratio} | {within} | {title} |")
    print()
    for run in runs:
        loaded = (
            "a kept database"
            if run.reused
            else f"generated {run.generate_seconds:.0f} s, loaded in {run.load_seconds:.0f} s"
        )
        print(f"{run.products:,} products: {loaded}; MongoDB server peak {run.mongo_peak_bytes / 2**30:.2f} GiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 1_400_000], help="products, smallest first")
    parser.add_argument("--pages", nargs="+", choices=list(PAGES), default=list(PAGES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the databases and CSVs (var/bench/dashboard_paint)")
    parser.add_argument("--reuse", action="store_true", help="paint on a database an earlier --keep run left")
    args = parser.parse_args(argv)
    stack = LocalStack(load_settings(), instance="paint")
    ours = not stack.mongo.process.is_running() and not mongo_ping(stack.settings.mongo_uri)
    stack.mongo.start()
    try:
        keep = args.keep or args.reuse
        sizes = sorted(args.sizes)
        runs = [run_size(stack, size, args.pages, args.repeats, args.seed, keep, args.reuse) for size in sizes]
    finally:
        if ours:
            stack.mongo.stop()
    print_table(runs, args.pages)


if __name__ == "__main__":
    main()
