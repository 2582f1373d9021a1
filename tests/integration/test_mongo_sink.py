"""The MongoDB sink on its own, against the stack's real MongoDB-wire server: the version guard, replays,
the derived collections, and the indexes the readers' queries use (checked with explain)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.database import Database

from dashboard import queries
from lakehouse import serving
from lakehouse.mongo import mongo_client
from spark_jobs.mongo_sink import MongoSink, WriteStats
from stack.services import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def sink(infrastructure: LocalStack) -> Iterator[MongoSink]:
    client = mongo_client(infrastructure.settings.mongo_uri)
    name = f"sink_{uuid.uuid4().hex[:8]}"
    sink = MongoSink(client[name], chunk_size=infrastructure.settings.mongo_bulk_size)
    sink.setup()
    yield sink
    client.drop_database(name)
    client.close()


def product(asin: str, version: int, price: float, category_id: int = 1) -> dict[str, Any]:
    return {
        "_id": asin,
        "asin": asin,
        "title": f"Product {asin}",
        "price": price,
        "category_id": category_id,
        "category_name": "Suitcases",
        "_v": version,
    }


def prices(db: Database) -> dict[str, float]:
    return {d["_id"]: d["price"] for d in db.products.find({}, {"price": 1})}


def test_an_older_version_after_a_newer_one_is_refused_and_counted(sink: MongoSink) -> None:
    assert sink.upsert_products([product("B000000001", 7, 20.0)]) == WriteStats(written=1)

    stats = sink.upsert_products([product("B000000001", 3, 10.0), product("B000000002", 1, 5.0)])

    assert stats == WriteStats(written=1, stale=1)
    assert prices(sink.db) == {"B000000001": 20.0, "B000000002": 5.0}
    assert sink.db.products.find_one({"_id": "B000000001"})["_v"] == 7


def test_a_newer_version_replaces_and_a_replayed_batch_changes_nothing(sink: MongoSink) -> None:
    first = [product(f"B00000000{i}", 1, 10.0 + i) for i in range(5)]
    sink.upsert_products(first)
    newer = [product(f"B00000000{i}", 2, 20.0 + i) for i in range(3)]

    assert sink.upsert_products(newer) == WriteStats(written=3)
    assert sink.upsert_products(newer) == WriteStats(written=3)  # the replay: same versions, same documents

    assert prices(sink.db) == {f"B00000000{i}": (20.0 if i < 3 else 10.0) + i for i in range(5)}
    assert sink.db.products.count_documents({}) == 5


def test_bulks_larger_than_one_chunk_keep_every_document(sink: MongoSink) -> None:
    documents = [product(f"B{i:09d}", 1, float(i)) for i in range(sink.chunk_size * 2 + 7)]
    assert sink.upsert_products(documents).written == len(documents)
    older = [product(d["_id"], 0, -1.0) for d in documents]
    assert sink.upsert_products(older) == WriteStats(written=0, stale=len(documents))
    assert sink.db.products.count_documents({"price": -1.0}) == 0


def test_quarantined_records_are_written_once_and_categories_are_guarded(sink: MongoSink) -> None:
    record = {"_id": "ingest-product:0:4", "reason": "price: below 0", "raw_value": "{}", "_kafka_ts": None}
    sink.insert_quarantined([record])
    sink.insert_quarantined([record])
    assert list(sink.db.quarantine.find()) == [record]

    sink.upsert_categories([{"_id": 1, "id": 1, "category_name": "Luggage", "_v": 5}])
    stats = sink.upsert_categories([{"_id": 1, "id": 1, "category_name": "Old name", "_v": 2}])
    assert stats.stale == 1
    assert sink.db.categories.find_one({"_id": 1})["category_name"] == "Luggage"


def test_gold_is_replaced_whole_and_the_status_stays_one_document(sink: MongoSink) -> None:
    sink.replace_gold("summary", [{"_id": "a", "n": 1}, {"_id": "b", "n": 2}])
    sink.replace_gold("summary", [{"_id": "b", "n": 3}])
    assert list(sink.db.gold_summary.find()) == [{"_id": "b", "n": 3}]

    for batch_id in range(3):
        sink.write_status({"_id": "streaming_job", "batch_id": batch_id})
    assert list(sink.db.pipeline_status.find()) == [{"_id": "streaming_job", "batch_id": 2}]


def test_drop_derived_empties_the_lakehouse_collections_and_keeps_the_indexes(sink: MongoSink) -> None:
    sink.upsert_products([product("B000000001", 1, 1.0)])
    sink.write_status({"_id": "streaming_job", "batch_id": 1})
    sink.drop_derived()
    assert sink.db.products.count_documents({}) == 0
    assert sink.db.pipeline_status.count_documents({}) == 1
    assert any(key == [("category_id", 1), ("_id", 1)] for key in _index_keys(sink.db))


def _index_keys(db: Database) -> list[list[tuple[str, int]]]:
    return [list(index["key"].items()) for index in db.products.list_indexes()]


def _stages(explained: dict[str, Any]) -> list[str]:
    """Every stage of the winning plan, outermost first (MongoDB 6+ nests it under `queryPlan`)."""
    winning = explained["queryPlanner"]["winningPlan"]
    stages, plan = [], winning.get("queryPlan", winning)
    while plan:
        stages.append(plan["stage"])
        plan = plan.get("inputStage") or (plan.get("inputStages") or [None])[0]
    return stages


@pytest.mark.parametrize(
    ("reader", "collection", "query", "sort"),
    [
        ("read API: GET /products/{asin}", "products", {"_id": "B000000042"}, None),
        ("read API: GET /products (first page)", "products", {}, [("_id", 1)]),
        ("read API: GET /products?category_id=3", "products", {"category_id": 3}, [("_id", 1)]),
        (
            "read API: next page of a category",
            "products",
            {"$and": [{"category_id": 3}, {"_id": {"$gt": "B0"}}]},
            [("_id", 1)],
        ),
        ("dashboard: Data browser page", "products", {}, [("_id", 1)]),
        ("dashboard: newest quarantined", "quarantine", {}, [("_kafka_ts", -1)]),
    ],
)
def test_the_readers_default_queries_use_an_index(
    sink: MongoSink, reader: str, collection: str, query: dict[str, Any], sort: list[tuple[str, int]] | None
) -> None:
    sink.upsert_products([product(f"B{i:09d}", 1, float(i), category_id=i % 7) for i in range(500)])
    cursor = sink.db[collection].find(query).limit(50)
    if sort:
        cursor = cursor.sort(sort)
    stages = _stages(cursor.explain())
    uses_index = any(s in ("IXSCAN", "IDHACK", "EXPRESS_IXSCAN") for s in stages)
    # No collection scan, and no sort of the matches in memory: the index gives the order too.
    assert uses_index and "COLLSCAN" not in stages and "SORT" not in stages, (reader, stages)


def test_the_readers_return_what_the_sink_wrote(sink: MongoSink) -> None:
    sink.upsert_products([product(f"B{i:09d}", 1, float(i), category_id=1 + i % 3) for i in range(120)])
    page, cursor = serving.search_products(sink.db, category_id=2, limit=10)
    assert [p["asin"] for p in page] == [f"B{i:09d}" for i in range(1, 30, 3)]
    assert cursor == "B000000028"
    assert serving.find_product(sink.db, "B000000005")["price"] == 5.0
    assert [d["_id"] for d in queries.browse(sink.db, "products", page=1, page_size=5)] == [
        f"B{i:09d}" for i in range(5, 10)
    ]
