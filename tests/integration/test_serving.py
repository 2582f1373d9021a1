"""What users see: the dashboard's pages (Streamlit AppTest) and the read API, against MongoDB holding the
generated sample after it went through the real pipeline; every number is checked against pandas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from streamlit.testing.v1 import AppTest

from api_ingest import main as api
from lakehouse import catalog
from lakehouse.settings import settings_env
from spark_jobs.gold import PRICE_BUCKET_EDGES
from stack.chromium import CHROMEDRIVER, headless_chromium
from stack.processes import wait_until
from tests.conftest import PROJECT_ROOT, SAMPLE_DATASET
from tests.dashboard_pages import Chart, all_charts, captions, metrics, open_page
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

BAD_RECORDS = [
    b"not json",
    json.dumps({"asin": "B0BADPRICE", "title": "t", "stars": 1, "reviews": 1, "price": -5, "category_id": 1}).encode(),
]


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DATASET / "amazon_products.csv")


@pytest.fixture(scope="module")
def categories() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DATASET / "amazon_categories.csv")


@pytest.fixture(scope="module")
def served(loaded_pipeline: Pipeline) -> Pipeline:
    """The loaded pipeline, plus two bad records written straight to Kafka for the quarantine views."""
    producer = KafkaProducer(bootstrap_servers=loaded_pipeline.settings.kafka_bootstrap_servers, acks="all")
    for value in BAD_RECORDS:
        producer.send(loaded_pipeline.settings.kafka_topic_products, key=b"bad", value=value)
    producer.flush()
    producer.close()
    loaded_pipeline.wait_until_idle()
    assert loaded_pipeline.db.quarantine.count_documents({}) == len(BAD_RECORDS)
    return loaded_pipeline


@pytest.fixture
def open_dashboard(served: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], AppTest]:
    """Opens one page (by its navigation title) of the dashboard on the served pipeline's database."""
    return lambda page: open_page(monkeypatch, settings_env(served.settings), page)


@pytest.fixture
def app(open_dashboard: Callable[[str], AppTest]) -> AppTest:
    return open_dashboard("Overview")


def chart(app: AppTest, title_start: str) -> Chart:
    for shown in all_charts(app):
        if shown.title.startswith(title_start):
            return shown
    raise AssertionError(f"no chart titled {title_start!r}")


def test_overview_numbers_equal_pandas(app: AppTest, products: pd.DataFrame, categories: pd.DataFrame) -> None:
    assert not app.exception
    shown = metrics(app)
    assert shown["Products"] == f"{len(products):,}"
    assert shown["Categories"] == f"{len(categories):,}"
    assert shown["Best sellers"] == f"{int(products['isBestSeller'].sum()):,}"
    assert shown["Average price"] == f"${products['price'].mean():,.2f}"
    assert shown["Quarantined"] == str(len(BAD_RECORDS))


def test_price_distribution_equals_pandas_buckets(app: AppTest, products: pd.DataFrame) -> None:
    bars = chart(app, "Price distribution")
    buckets = pd.cut(products["price"], bins=[*PRICE_BUCKET_EDGES, float("inf")], right=False, labels=False)
    assert bars.values("y") == buckets.value_counts().sort_index().tolist()
    assert bars.encoding("x")["sort"] is None, "the buckets in price order"


def test_price_per_category_table_equals_pandas(app: AppTest, products: pd.DataFrame, categories: pd.DataFrame) -> None:
    table = app.dataframe[0].value.set_index("category_name").sort_index()
    named = products.merge(categories, left_on="category_id", right_on="id")
    expected = (
        named.groupby("category_name")
        .agg(product_count=("asin", "size"), avg_price=("price", "mean"), median_price=("price", "median"))
        .sort_index()
    )
    assert table["product_count"].tolist() == expected["product_count"].tolist()
    assert table["avg_price"].tolist() == pytest.approx(expected["avg_price"].tolist(), rel=1e-9)
    assert table["median_price"].tolist() == pytest.approx(expected["median_price"].tolist(), rel=1e-9)


def test_top_categories_are_shares_and_the_rest_is_said_apart(app: AppTest, products: pd.DataFrame) -> None:
    bars = chart(app, "Products per category")
    counts = products["category_id"].value_counts()
    assert sorted(bars.values("text"), reverse=True) == counts.head(15).tolist()
    assert bars.values("x") == pytest.approx([n / len(products) for n in bars.values("text")])
    assert bars.encoding("y")["sort"] == "-x", "the largest on top"
    rest = counts.iloc[15:]
    share = rest.sum() / len(products)
    assert f"Other: {len(rest)} categories, {rest.sum():,} products ({share:.1%})" in captions(app)


def test_categories_page_views(open_dashboard: Callable[[str], AppTest], products: pd.DataFrame) -> None:
    app = open_dashboard("Categories")
    sellers = chart(app, "Best sellers per category")
    assert max(sellers.values("y")) == products.groupby("category_id")["isBestSeller"].sum().max()
    bought = chart(app, "Bought last month")
    assert max(bought.values("y")) == products.groupby("category_id")["boughtInLastMonth"].sum().max()
    chart(app, "Rating vs. price per category")
    chart(app, "Average discount off list price")
    app.text_input(key="category_lookup").input("suitcases").run()
    [found] = [d.value for d in app.dataframe if "avg_discount" in d.value.columns]
    names = pd.read_csv(SAMPLE_DATASET / "amazon_categories.csv").set_index("id")["category_name"]
    matching = names[names.str.contains("suitcases", case=False)]
    counts = products["category_id"].value_counts()
    assert sorted(found["category_name"]) == sorted(matching)
    assert dict(zip(found["category_name"], found["product_count"], strict=True)) == {
        name: counts[category_id] for category_id, name in matching.items()
    }


def test_product_lookup_by_asin_and_by_title_words(
    open_dashboard: Callable[[str], AppTest], products: pd.DataFrame
) -> None:
    app = open_dashboard("Products")
    first = products.iloc[0]
    app.text_input(key="product_lookup").input(first["asin"]).run()
    text = " ".join(m.value for m in app.markdown)
    assert first["title"] in text and f"${first['price']:,.2f}" in text
    app.text_input(key="product_lookup").input("frying PAN").run()
    wanted = products["title"].str.contains("Frying Pan").sum()
    assert any(c.value == f"{min(wanted, 20)} product(s)" for c in app.caption)


def test_pipeline_page_shows_progress_and_quarantine_reasons(open_dashboard: Callable[[str], AppTest]) -> None:
    app = open_dashboard("Pipeline")
    shown = metrics(app)
    assert shown["Last batch"].startswith("#")
    assert any(label.startswith("Lag ingest-product") for label in shown)
    [reasons] = [d.value for d in app.dataframe if list(d.value.columns) == ["reason", "records"]]
    assert sorted(reasons["reason"]) == ["price: below 0", "value: not one JSON object"]


def test_data_browser_filters_a_collection(open_dashboard: Callable[[str], AppTest], categories: pd.DataFrame) -> None:
    app = open_dashboard("Data browser")
    app.selectbox(key="browse_collection").select("categories").run()
    app.text_input(key="browse_field").input("id").run()
    app.text_input(key="browse_value").input("3").run()
    assert [e.label for e in app.expander] == ["3"]
    assert categories.set_index("id").loc[3, "category_name"] in json.dumps([j.value for j in app.json])


@pytest.fixture(scope="module")
def reads(served: Pipeline) -> Iterator[TestClient]:
    original = api.settings
    api.settings = served.settings
    with TestClient(api.app) as client:
        yield client
    api.settings = original


def test_read_one_product(reads: TestClient, products: pd.DataFrame, categories: pd.DataFrame) -> None:
    row = products.iloc[5]
    body = reads.get(f"/products/{row['asin']}").json()
    assert body["title"] == row["title"] and body["price"] == row["price"]
    assert body["category_name"] == categories.set_index("id").loc[row["category_id"], "category_name"]
    assert reads.get("/products/B000NOTHERE").status_code == 404


def test_cursor_paging_visits_every_product_of_a_category_once(reads: TestClient, products: pd.DataFrame) -> None:
    seen, after = [], None
    while True:
        page = reads.get("/products", params={"category_id": 7, "limit": 7, **({"after": after} if after else {})})
        seen += [item["asin"] for item in page.json()["items"]]
        after = page.json()["next"]
        if after is None:
            break
    assert seen == sorted(products.loc[products["category_id"] == 7, "asin"])


def test_title_search_and_categories_and_insights(
    reads: TestClient, products: pd.DataFrame, categories: pd.DataFrame
) -> None:
    found = reads.get("/products", params={"q": "espresso machine", "limit": 200}).json()["items"]
    assert len(found) == products["title"].str.contains("Espresso Machine").sum()
    assert len(reads.get("/categories").json()) == len(categories)
    insights = reads.get("/insights").json()
    assert insights["as_of"] is not None
    assert insights["summary"]["products"] == len(products)
    assert sum(b["product_count"] for b in insights["price_buckets"]) == len(products)


ARTIFACTS = PROJECT_ROOT / "var" / "test" / "artifacts"
# Streamlit draws a chart as Vega-Lite SVG in this element, its title in the SVG.
CHART = '[data-testid="stVegaLiteChart"]'
CHART_TITLE = "g.role-title-text text"
# The browser's zone for the tests: not UTC, so that a time drawn in the viewer's own zone would show shifted.
BROWSER_TIME_ZONE = "Asia/Tokyo"
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


@pytest.fixture(scope="module")
def browser(served: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless Chromium on the dashboard the stack starts (as `make run` does), for every page's test."""
    if not CHROMEDRIVER.exists():
        pytest.skip("Debian's chromium-driver is not installed (make setup installs it)")
    served.stack.start_dashboard()
    driver = headless_chromium(tmp_path_factory.mktemp("chromium") / "profile")
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": BROWSER_TIME_ZONE})
    try:
        yield driver
    finally:
        driver.quit()
        served.stack.process("dashboard").stop()


def open_url(browser: webdriver.Chrome, served: Pipeline, url_path: str, *titles: str) -> None:
    """The page at `url_path`, once every chart titled `titles` (title starts) is drawn."""
    browser.get(f"http://127.0.0.1:{served.settings.dashboard_port}/{url_path}")
    wait_for_charts(browser, *titles)


def wait_for_charts(browser: webdriver.Chrome, *titles: str) -> None:
    def drawn(driver: webdriver.Chrome) -> bool:
        shown = chart_titles(driver)
        return all(any(title.startswith(start) for title in shown) for start in titles)

    WebDriverWait(browser, 120, ignored_exceptions=[StaleElementReferenceException]).until(drawn)
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def chart_titles(browser: webdriver.Chrome) -> list[str]:
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, f"{CHART} {CHART_TITLE}")]


def drawn_chart(browser: webdriver.Chrome, title_start: str) -> WebElement:
    [drawn] = [
        element
        for element in browser.find_elements(By.CSS_SELECTOR, CHART)
        if element.find_element(By.CSS_SELECTOR, CHART_TITLE).text.startswith(title_start)
    ]
    return drawn


def axis_labels(chart: WebElement, axis: str = "X") -> list[str]:
    """The tick labels of a drawn chart's `axis` ("X" or "Y"), found by the axis' ARIA label."""
    [drawn] = [
        element
        for element in chart.find_elements(By.CSS_SELECTOR, "g.role-axis")
        if (element.get_attribute("aria-label") or "").startswith(f"{axis}-axis")
    ]
    return [label.text for label in drawn.find_elements(By.CSS_SELECTOR, "g.role-axis-label text")]


def tooltip_times(browser: webdriver.Chrome, chart: WebElement) -> set[str]:
    """The times the tooltips of a drawn chart's points show, each point hovered in turn (the pointer moved
    off the chart in between, hiding the tooltip, so that none is read twice)."""
    tip = browser.find_element(By.ID, "vg-tooltip-element")
    away = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stCaptionContainer"]')
    shown = set()
    for point in chart.find_elements(By.CSS_SELECTOR, "g.mark-symbol.role-mark path"):
        ActionChains(browser).move_to_element(point).perform()
        shown.add(WebDriverWait(browser, 10).until(lambda _: MOMENT.search(tip.text)).group())
        ActionChains(browser).move_to_element(away).perform()
        WebDriverWait(browser, 10).until(lambda _: not tip.is_displayed())
    return shown


def shown_metrics(browser: webdriver.Chrome) -> dict[str, str]:
    shown = {}
    for metric in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        label = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text
        shown[label] = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
    return shown


def page_text(browser: webdriver.Chrome) -> str:
    return browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text


def type_into(browser: webdriver.Chrome, label: str, text: str) -> None:
    """`text` typed into the text input labelled `label`, once the page has drawn it, then Enter."""
    fields = WebDriverWait(browser, 60).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, f'input[aria-label="{label}"]')
    )
    fields[0].send_keys(text, Keys.ENTER)


def screenshot(browser: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_overview_in_a_real_browser(browser: webdriver.Chrome, served: Pipeline, products: pd.DataFrame) -> None:
    open_url(browser, served, "", "Price distribution", "Products per category", "Average and median price")
    shown = shown_metrics(browser)
    assert (shown["Products"], shown["Quarantined"]) == (f"{len(products):,}", str(len(BAD_RECORDS)))
    rest = products["category_id"].value_counts().iloc[15:]
    assert f"Other: {len(rest)} categories, {rest.sum():,} products" in page_text(browser)
    screenshot(browser, "dashboard")  # the README's picture
    screenshot(browser, "dashboard-overview")


def test_categories_in_a_real_browser(browser: webdriver.Chrome, served: Pipeline) -> None:
    open_url(browser, served, "categories", "Rating vs. price per category", "Best sellers per category")
    ticks = axis_labels(drawn_chart(browser, "Rating vs. price"))
    assert len(ticks) >= 2 and all(tick.startswith("$") for tick in ticks), ticks
    screenshot(browser, "dashboard-categories")


def test_products_in_a_real_browser(browser: webdriver.Chrome, served: Pipeline, products: pd.DataFrame) -> None:
    open_url(browser, served, "products")
    first = products.iloc[0]
    type_into(browser, "ASIN or title words", first["asin"])
    WebDriverWait(browser, 60).until(lambda b: first["title"] in page_text(b))
    assert "1 product(s)" in page_text(browser)
    screenshot(browser, "dashboard-products")


def test_trends_in_a_real_browser_after_a_product_is_re_priced(
    browser: webdriver.Chrome, served: Pipeline, products: pd.DataFrame
) -> None:
    """A new version of a product POSTed through the API: its price history has two steps."""
    first = json.loads(products.iloc[0].to_json())
    repriced = first | {"price": round(first["price"] + 10, 2)}
    assert httpx.post(f"{served.settings.api_url}/products", json=repriced, timeout=30).status_code == 201
    history = served.db[catalog.PRICE_HISTORY.name]
    assert wait_until(lambda: history.count_documents({"asin": first["asin"]}) >= 2, 120, interval=1.0)

    open_url(browser, served, "trends", "Average price", "Median price", "Products", "Best sellers")
    type_into(browser, "ASIN or title words", first["asin"])
    wait_for_charts(browser, "Price history")
    shown = shown_metrics(browser)
    assert (shown["Versions"], shown["First price"]) == ("2", f"${first['price']:,.2f}")
    assert shown["Current price"] == f"${repriced['price']:,.2f}"
    arrivals = {f"{version['arrived_at']:%Y-%m-%d %H:%M:%S}" for version in history.find({"asin": first["asin"]})}
    assert tooltip_times(browser, drawn_chart(browser, "Price history")) == arrivals, f"UTC in {BROWSER_TIME_ZONE}"
    screenshot(browser, "dashboard-trends")


def test_pipeline_in_a_real_browser(browser: webdriver.Chrome, served: Pipeline) -> None:
    titles = ("Rows per second", "Batch duration by step", "Lag per topic", "Freshness", "Quarantined per batch")
    open_url(browser, served, "pipeline", *titles)
    shown = shown_metrics(browser)
    assert shown["Job"] == "Running" and shown["Last batch"].startswith("#")
    assert "make backfill" in page_text(browser)
    screenshot(browser, "dashboard-pipeline")


def test_data_browser_in_a_real_browser(browser: webdriver.Chrome, served: Pipeline) -> None:
    open_url(browser, served, "browser")
    WebDriverWait(browser, 60).until(lambda b: "25 document(s) on this page" in page_text(b))
    screenshot(browser, "dashboard-browser")
