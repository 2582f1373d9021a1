"""Trends on the real stack (issue #12): products posted to the API, then re-priced in a later batch. The job
keeps every version's price (price_history), a point per category and time bucket (gold_category_history),
the largest moves (gold_movers) and an event per batch with its steps and lag (pipeline_events); a replayed
batch changes none of them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymongo.database import Database
from pyspark.sql import SparkSession

from lakehouse import catalog
from spark_jobs.consistency import run_checks
from stack.processes import wait_until
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, running_pipeline
from tests.unit.test_schemas import GOOD

pytestmark = pytest.mark.integration

KETTLES, TOASTERS = 9101, 9102
FIRST_PRICES = {"B0TREND001": (KETTLES, 10.0), "B0TREND002": (KETTLES, 20.0), "B0TREND003": (TOASTERS, 30.0)}
FIRST_PRICES |= {"B0TREND004": (TOASTERS, 40.0)}
# The later batch: one product up, one down, one sent again at the same price.
REPRICED = {"B0TREND001": 12.5, "B0TREND003": 24.0, "B0TREND002": 20.0}
WINDOWS = ("1h", "24h", "7d", "30d")


@dataclass
class Trended:
    pipeline: Pipeline

    @property
    def db(self) -> Database:
        return self.pipeline.db


def post(pipeline: Pipeline, path: str, records: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{pipeline.settings.api_url}{path}", json=records, timeout=30)
    assert response.status_code == 201, response.text


def products(prices: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {**GOOD, "asin": asin, "title": f"Trend {asin}", "price": price, "category_id": FIRST_PRICES[asin][0]}
        for asin, price in prices.items()
    ]


def served_prices(db: Database) -> dict[str, float]:
    return {d["_id"]: d["price"] for d in db[catalog.PRODUCTS.name].find({}, {"price": 1})}


@pytest.fixture(scope="module")
def trended(infrastructure: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trended]:
    """One pipeline (buckets of 1 s, so each refresh is its own point) whose job refreshes gold on its own thread
    (GOLD_REFRESH=background; the other modules' jobs refresh it in the batch): two categories, four products,
    then three of them again in a later batch."""
    folder = tmp_path_factory.mktemp("trends")
    with running_pipeline(infrastructure, folder, trends_bucket_seconds=1, gold_refresh="background") as pipeline:
        post(pipeline, "/categories/batch", [{"id": KETTLES, "category_name": "Kettles"}])
        post(pipeline, "/categories/batch", [{"id": TOASTERS, "category_name": "Toasters"}])
        post(pipeline, "/products/batch", products({asin: price for asin, (_, price) in FIRST_PRICES.items()}))
        pipeline.wait_for_products(len(FIRST_PRICES))
        pipeline.wait_until_idle()
        post(pipeline, "/products/batch", products(REPRICED))
        assert wait_until(lambda: served_prices(pipeline.db)["B0TREND001"] == 12.5, 300, interval=1.0)
        pipeline.wait_until_idle()
        yield Trended(pipeline)
        print("\n".join(batch_lines(pipeline)))


def batch_lines(pipeline: Pipeline, batch_id: str = r"\d+") -> list[str]:
    """The job log's lines for each batch run (rows, seconds per step), of every start of this pipeline's job."""
    log = pipeline.stack.process("job").log_file.read_text(errors="replace")
    return [line for line in log.splitlines() if re.search(rf"stream batch {batch_id}:", line)]


def test_the_price_history_holds_every_version_in_arrival_order(trended: Trended) -> None:
    versions: dict[str, list[float]] = {}
    arrivals: dict[str, list[Any]] = {}
    for document in trended.db[catalog.PRICE_HISTORY.name].find().sort([("asin", 1), ("_v", 1)]):
        assert document["_id"] == f"{document['asin']}@{document['_v']}"
        assert set(document) == {"_id", *catalog.PRICE_HISTORY.fields}
        versions.setdefault(document["asin"], []).append(document["price"])
        arrivals.setdefault(document["asin"], []).append(document["arrived_at"])

    assert versions == {
        "B0TREND001": [10.0, 12.5],
        "B0TREND002": [20.0, 20.0],
        "B0TREND003": [30.0, 24.0],
        "B0TREND004": [40.0],
    }
    assert all(times == sorted(times) for times in arrivals.values())


def category_points(db: Database) -> dict[int, list[tuple[float, int]]]:
    """Per category: (avg_price, product_count) of each point, oldest first."""
    points: dict[int, list[tuple[float, int]]] = {}
    for point in db[catalog.GOLD_CATEGORY_HISTORY.name].find().sort([("category_id", 1), ("at", 1)]):
        assert point["_id"] == f"{point['category_id']}@{int(point['at'].timestamp())}"
        points.setdefault(point["category_id"], []).append((point["avg_price"], point["product_count"]))
    return points


def test_each_refresh_adds_a_point_per_category(trended: Trended) -> None:
    assert category_points(trended.db) == {KETTLES: [(15.0, 2), (16.25, 2)], TOASTERS: [(35.0, 2), (32.0, 2)]}


def movers(db: Database, kind: str) -> dict[str, list[tuple[Any, ...]]]:
    """Per window: (direction, rank, key, name, start, end, change, change_pct rounded), ups first."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for mover in db[catalog.GOLD_MOVERS.name].find({"kind": kind}).sort([("window", 1), ("direction", -1)]):
        assert mover["_id"] == f"{kind}:{mover['window']}:{mover['direction']}:{mover['rank']}"
        row = (mover["direction"], mover["rank"], mover["key"], mover["name"], mover["start_price"])
        found.setdefault(mover["window"], []).append(
            (*row, mover["end_price"], mover["change"], round(mover["change_pct"], 6))
        )
    return found


def test_the_movers_are_the_repriced_products_and_their_categories(trended: Trended) -> None:
    product_moves = [
        ("up", 1, "B0TREND001", "Trend B0TREND001", 10.0, 12.5, 2.5, 25.0),
        ("down", 1, "B0TREND003", "Trend B0TREND003", 30.0, 24.0, -6.0, -20.0),
    ]
    category_moves = [
        ("up", 1, str(KETTLES), "Kettles", 15.0, 16.25, 1.25, round(125 / 15, 6)),
        ("down", 1, str(TOASTERS), "Toasters", 35.0, 32.0, -3.0, round(-300 / 35, 6)),
    ]

    assert movers(trended.db, "product") == dict.fromkeys(WINDOWS, product_moves)
    assert movers(trended.db, "category") == dict.fromkeys(WINDOWS, category_moves)
    newest = max(d["arrived_at"] for d in trended.db[catalog.PRICE_HISTORY.name].find())
    assert {m["until"] for m in trended.db[catalog.GOLD_MOVERS.name].find()} == {newest}


def events_with_lag(db: Database) -> list[dict[str, Any]]:
    return list(db[catalog.PIPELINE_EVENTS.name].find({"lag": {"$exists": True}}).sort("batch_id", 1))


def test_every_batch_has_an_event_with_its_steps_and_lag(trended: Trended) -> None:
    collection = trended.db[catalog.PIPELINE_EVENTS.name]
    # The listener adds the lag after the batch, on its own thread.
    assert wait_until(lambda: len(events_with_lag(trended.db)) == collection.count_documents({}), 60)
    events = events_with_lag(trended.db)

    assert sum(event["input_rows"] for event in events) == 2 + len(FIRST_PRICES) + len(REPRICED)
    for event in events:
        assert set(event) == {"_id", *catalog.PIPELINE_EVENTS.fields}
        assert event["_id"].endswith(f":{event['batch_id']}") and event["source"] == "stream"
        assert {"read", "bronze", "silver", "history"} <= set(event["steps"])
        assert not {"gold", "points", "movers"} & set(event["steps"])  # the gold refresher's, on its own thread
        assert event["seconds"] == pytest.approx(sum(event["steps"].values()))
        assert set(event["lag"]) == set(trended.pipeline.settings.kafka_topics)
        assert event["quarantined"] == 0
        freshness = (event["at"] - event["newest_record_ts"]).total_seconds()
        assert event["freshness_seconds"] == pytest.approx(freshness, abs=0.002)  # MongoDB keeps milliseconds
    refresh = trended.db[catalog.PIPELINE_STATUS.name].find_one({"_id": catalog.GOLD_REFRESH_STATUS_ID})
    assert set(refresh["steps"]) == {"gold", "delta_gold", "points", "movers"}


def trends_contents(db: Database) -> dict[str, list[dict[str, Any]]]:
    served = (catalog.PRICE_HISTORY, catalog.GOLD_CATEGORY_HISTORY, catalog.GOLD_MOVERS)
    return {c.name: list(db[c.name].find().sort("_id", 1)) for c in served}


def replay_last_batch(pipeline: Pipeline) -> int:
    """Stops the job, forgets that its last batch with records was committed (and any batch after it), and
    starts it again: Spark runs that batch again from its checkpointed offsets. Returns its id."""
    last = pipeline.db[catalog.PIPELINE_EVENTS.name].find_one(sort=[("batch_id", -1)])["batch_id"]
    pipeline.stack.process("job").stop()
    checkpoint = pipeline.settings.query_checkpoint_dir
    for log, first in (("commits", last), ("offsets", last + 1)):
        for entry in (checkpoint / log).iterdir():
            batch = entry.name.removeprefix(".").removesuffix(".crc")  # Hadoop's checksum file goes with its entry
            if batch.isdigit() and int(batch) >= first:
                entry.unlink()
    pipeline.stack.start_job()
    return last


def test_a_replayed_batch_changes_nothing(trended: Trended, spark: SparkSession) -> None:
    pipeline = trended.pipeline
    before = trends_contents(pipeline.db)
    event_ids = sorted(d["_id"] for d in pipeline.db[catalog.PIPELINE_EVENTS.name].find())
    replayed = replay_last_batch(pipeline)

    def ran_again() -> bool:
        pipeline.fail_if_job_died()
        return len(batch_lines(pipeline, str(replayed))) == 2

    assert wait_until(ran_again, 300, interval=1.0), pipeline.stack.process("job").log_tail()
    pipeline.wait_until_idle()

    assert trends_contents(pipeline.db) == before
    assert sorted(d["_id"] for d in pipeline.db[catalog.PIPELINE_EVENTS.name].find()) == event_ids
    diverged = [check.line() for check in run_checks(spark, pipeline.settings) if not check.ok]
    assert not diverged, diverged
