"""The MongoDB sink on its own, against the stack's real MongoDB-wire server: the version guard, replays,
the derived collections, the indexes the readers' queries use (checked with explain), and documents the
server cannot store (rejected one by one, never blocking the others)."""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

import bson
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from dashboard import queries
from lakehouse import catalog, serving
from lakehouse.mongo import mongo_client
from spark_jobs.mongo_sink import MongoSink, Rejected, WriteStats, guarded_replace
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


def product(asin: str, version: int, price: float, category_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "_id": asin,
        "asin": asin,
        "title": f"Product {asin}",
        "price": price,
        "category_id": category_id,
        "category_name": "Suitcases",
        "_v": version,
        **fields,
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


def test_the_speed_layer_never_replaces_the_jobs_write_of_a_version_and_the_job_replaces_its(sink: MongoSink) -> None:
    """The speed layer's guard refuses an equal version, the job's accepts it (mongo_sink.replace_if_older)."""
    jobs = product("B000000001", 5, 10.0, category_name="Renamed by the job")
    sink.upsert_products([jobs])
    speed = [product("B000000001", 5, 10.0, category_name=None), product("B000000002", 5, 1.0)]

    assert sink.upsert_products_ahead(speed) == WriteStats(written=1, stale=1)
    assert sink.db.products.find_one({"_id": "B000000001"})["category_name"] == "Renamed by the job"
    assert sink.upsert_products_ahead([product("B000000001", 4, 9.0)]) == WriteStats(stale=1)  # older
    assert sink.upsert_products_ahead([product("B000000001", 6, 12.0)]) == WriteStats(written=1)  # newer

    assert sink.upsert_products([product("B000000002", 5, 1.0, category_name="Joined by the job")]) == WriteStats(
        written=1
    )
    assert sink.db.products.find_one({"_id": "B000000002"})["category_name"] == "Joined by the job"
    assert prices(sink.db) == {"B000000001": 12.0, "B000000002": 1.0}


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

    sink.upsert_products([product("B000000001", 1, 1.0, category_id=1)])
    sink.upsert_categories([{"_id": 1, "id": 1, "category_name": "Luggage", "_v": 5}])
    stats = sink.upsert_categories([{"_id": 1, "id": 1, "category_name": "Old name", "_v": 2}])
    assert stats.stale == 1
    assert sink.db.categories.find_one({"_id": 1})["category_name"] == "Luggage"
    # The older version renames no product either (MongoDB kept while silver was rebuilt, a stream re-read).
    assert sink.db.products.find_one({"_id": "B000000001"})["category_name"] == "Luggage"


def test_gold_is_replaced_whole_and_the_status_stays_one_document(sink: MongoSink) -> None:
    sink.replace_gold(catalog.GOLD_SUMMARY, [{"_id": "a", "n": 1}, {"_id": "b", "n": 2}])
    sink.replace_gold(catalog.GOLD_SUMMARY, [{"_id": "b", "n": 3}])
    assert list(sink.db.gold_summary.find()) == [{"_id": "b", "n": 3}]

    for batch_id in range(3):
        sink.write_status({"_id": "streaming_job", "batch_id": batch_id})
    assert list(sink.db.pipeline_status.find()) == [{"_id": "streaming_job", "batch_id": 2}]


def test_drop_derived_empties_the_lakehouse_collections_and_keeps_the_indexes(sink: MongoSink) -> None:
    sink.upsert_products([product("B000000001", 1, 1.0)])
    sink.replace_by_ids(catalog.PRICE_HISTORY, [{"_id": "B000000001@1", "asin": "B000000001", "_v": "1"}])
    sink.replace_gold(catalog.GOLD_MOVERS, [{"_id": "product:1h:up:1"}])
    sink.replace_by_ids(catalog.GOLD_CATEGORY_HISTORY, [{"_id": "1@60", "category_id": 1}])
    sink.set_by_ids(catalog.PIPELINE_EVENTS, [{"_id": "app:0", "batch_id": 0}])
    sink.write_status({"_id": "streaming_job", "batch_id": 1})
    sink.write_status({"_id": catalog.GOLD_REFRESH_STATUS_ID, "silver_products_version": 3})

    sink.drop_derived()

    counts = {c.name: sink.db[c.name].count_documents({}) for c in catalog.ALL}
    assert {name for name, count in counts.items() if count} == {
        "pipeline_status",
        "pipeline_events",
        "gold_category_history",
    }
    # The last gold refresh named versions of the silver a rebuild replaces.
    assert [d["_id"] for d in sink.db[catalog.PIPELINE_STATUS.name].find()] == ["streaming_job"]
    assert any(key == [("category_id", 1), ("_id", 1)] for key in _index_keys(sink.db))


def test_every_index_of_the_catalog_is_created(sink: MongoSink) -> None:
    for collection in catalog.ALL:
        keys = [tuple(index["key"]) for index in sink.db[collection.name].list_indexes()]
        assert set(collection.indexes) <= set(keys), collection.name


def test_history_documents_are_replaced_by_id_and_other_points_kept(sink: MongoSink) -> None:
    first = [
        {"_id": "1@60", "category_id": 1, "avg_price": 10.0},
        {"_id": "1@120", "category_id": 1, "avg_price": 11.0},
    ]
    sink.replace_by_ids(catalog.GOLD_CATEGORY_HISTORY, first)

    stats = sink.replace_by_ids(catalog.GOLD_CATEGORY_HISTORY, [{"_id": "1@120", "category_id": 1, "avg_price": 12.0}])

    assert stats == WriteStats(written=1)
    assert {d["_id"]: d["avg_price"] for d in sink.db.gold_category_history.find()} == {"1@60": 10.0, "1@120": 12.0}


def test_a_pipeline_event_rewritten_by_a_replay_keeps_the_listeners_lag(sink: MongoSink) -> None:
    event = {"_id": "app:3", "batch_id": 3, "input_rows": 10}
    sink.set_by_ids(catalog.PIPELINE_EVENTS, [event])
    sink.update_fields(catalog.PIPELINE_EVENTS, "app:3", {"lag": {"ingest-product": 4}})

    sink.set_by_ids(catalog.PIPELINE_EVENTS, [event])  # the replayed batch rewrites its event

    assert list(sink.db.pipeline_events.find()) == [event | {"lag": {"ingest-product": 4}}]


def test_a_price_history_version_mongodb_cannot_hold_is_rejected_and_the_others_stored(sink: MongoSink) -> None:
    good = {"_id": "B000000001@1", "asin": "B000000001", "price": 1.0, "_v": "1"}
    bad = {"_id": "B000000001@2", "asin": "B000000001", "price": float("nan"), "_v": "2"}

    stats = sink.replace_by_ids(catalog.PRICE_HISTORY, [good, bad])

    assert stats == WriteStats(written=1, rejected=[Rejected(bad["_id"], NAN_REASON)])
    assert list(sink.db.price_history.find()) == [good]


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


# Documents the server cannot store ----------------------------------------------------------------------------

NAN_REASON = "sink: price is NaN (MongoDB serves finite numbers only)"


def asins(db: Database) -> set[str]:
    return {d["_id"] for d in db.products.find({}, {"_id": 1})}


def test_unstorable_documents_in_a_bulk_are_rejected_with_their_reasons_and_the_rest_is_stored(
    sink: MongoSink,
) -> None:
    documents = [product(f"B{i:09d}", 1, float(i)) for i in range(1_000)]
    documents[300]["price"] = float("nan")
    documents[400]["listPrice"] = float("inf")
    documents[500]["title"] = "x" * (17 * 1024 * 1024)
    documents[600]["details"] = {"size": "L", "$where": "sleep(1000)"}
    documents[700]["_kafka_ts"] = datetime(1, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=5)))

    stats = sink.upsert_products(documents)

    assert stats == WriteStats(
        written=995,
        rejected=[
            Rejected("B000000300", NAN_REASON),
            Rejected("B000000400", "sink: listPrice is Infinity (MongoDB serves finite numbers only)"),
            Rejected(
                "B000000500", "sink: the document is 17.0 MiB of BSON, over MongoDB's 16.0 MiB (largest field: title)"
            ),
            Rejected(
                "B000000600",
                "sink: field details.$where starts with $ (MongoDB reads $-prefixed names as operators)",
            ),
            Rejected(
                "B000000700",
                "sink: _kafka_ts is a date outside years 1 to 9999 in UTC (what a BSON date reads back as)",
            ),
        ],
    )
    assert [r.document for r in stats.rejected] == [documents[i] for i in (300, 400, 500, 600, 700)]
    rejected = {f"B{i:09d}" for i in (300, 400, 500, 600, 700)}
    assert asins(sink.db) == {d["_id"] for d in documents} - rejected
    assert sink.db.products.find_one({"_id": "B000000999"})["price"] == 999.0


@pytest.fixture
def secantus(infrastructure: LocalStack) -> None:
    if infrastructure.mongo.kind != "secantus":
        pytest.skip("what secantusd-rs itself does with a document the check would refuse")


def test_secantus_stores_nan_when_the_check_is_bypassed(secantus: None, sink: MongoSink) -> None:
    # The reported server dropped the connection on NaN; secantusd-rs 0.5.3-beta.196 stores it and reads it
    # back (and +-inf). The sink still refuses them: the readers serve JSON, which has no NaN.
    documents = [product(f"B{i:09d}", 1, float(i)) for i in range(10)]
    documents[4]["price"] = float("nan")
    documents[5]["price"] = float("-inf")

    stats = sink._send(sink.db.products, documents, [guarded_replace(d) for d in documents])

    assert stats == WriteStats(written=10)
    assert math.isnan(sink.db.products.find_one({"_id": "B000000004"})["price"])
    assert sink.db.products.find_one({"_id": "B000000005"})["price"] == float("-inf")


def test_write_errors_the_server_gives_per_document_reject_exactly_those(secantus: None, sink: MongoSink) -> None:
    documents = [product(f"B{i:09d}", 1, float(i)) for i in range(20)]
    documents[7]["_id"] = ["B000000007"]
    documents[12]["title"] = "x" * (17 * 1024 * 1024)

    stats = sink._send(sink.db.products, documents, [guarded_replace(d) for d in documents])

    assert stats.written == 18
    assert [(r.key, r.reason) for r in stats.rejected] == [
        (
            ["B000000007"],
            "sink: MongoDB refused it: Plan executor error during update :: caused by :: "
            "The '_id' value cannot be of type array (code 53)",
        ),
        (
            "B000000012",
            "sink: MongoDB refused it: object to insert too large. "
            f"size in bytes: {len(bson.encode(documents[12]))}, max size: 16777216 (code 10334)",
        ),
    ]
    assert len(asins(sink.db)) == 18


def raw_product_with_bad_utf8(asin: str) -> RawBSONDocument:
    """A product whose title's bytes are not UTF-8: Python strings cannot hold that, raw BSON can, and the
    check (which reads it with U+FFFD replacements) lets it through."""
    encoded = bson.encode(product(asin, 1, 1.0, title="ab~~"))
    lenient = CodecOptions(document_class=RawBSONDocument, unicode_decode_error_handler="replace")
    return RawBSONDocument(encoded.replace(b"ab~~", b"ab\xff\xfe"), codec_options=lenient)


def test_a_document_that_makes_the_server_refuse_the_whole_bulk_is_isolated(secantus: None, sink: MongoSink) -> None:
    documents: list[Any] = [product(f"B{i:09d}", 1, float(i)) for i in range(200)]
    documents[123] = raw_product_with_bad_utf8("B000000123")

    stats = sink.upsert_products(documents)

    # secantusd-rs refuses the whole update command (BadValue): halves are sent until it is alone.
    assert stats == WriteStats(
        written=199,
        rejected=[
            Rejected(
                "B000000123",
                "sink: MongoDB refused it: invalid BSON in body: malformed message body: utf-8 encoding error: "
                "invalid utf-8 sequence of 1 bytes from index 2 (code 2)",
            )
        ],
    )
    assert asins(sink.db) == {f"B{i:09d}" for i in range(200)} - {"B000000123"}


NAN_DOUBLE = struct.pack("<d", float("nan"))


class NanDroppingProxy:
    """A TCP proxy in front of the real server that, like the server of the report, drops the connection of
    a client whose message carries a NaN double."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream)
                threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        tail = b""
        with suppress(OSError):
            while data := source.recv(65536):
                if from_client and NAN_DOUBLE in tail + data:
                    self.dropped += 1
                    break
                tail = data[-7:]
                target.sendall(data)
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@contextmanager
def sink_behind_nan_dropping_proxy(
    infrastructure: LocalStack, db_name: str
) -> Iterator[tuple[MongoSink, NanDroppingProxy]]:
    address = urlparse(infrastructure.settings.mongo_uri)
    proxy = NanDroppingProxy((address.hostname or "127.0.0.1", address.port or 27017))
    client = mongo_client(f"mongodb://127.0.0.1:{proxy.port}/", server_selection_timeout_ms=5_000)
    try:
        yield MongoSink(client[db_name]), proxy
    finally:
        client.close()
        proxy.close()


def test_a_document_the_server_drops_the_connection_on_is_isolated_and_the_rest_stored(
    infrastructure: LocalStack, sink: MongoSink
) -> None:
    documents = [product(f"B{i:09d}", 1, float(i)) for i in range(100)]
    documents[37]["price"] = float("nan")

    with sink_behind_nan_dropping_proxy(infrastructure, sink.db.name) as (dropping, proxy):
        stats = dropping._send(dropping.db.products, documents, [guarded_replace(d) for d in documents])

    assert stats.written == 99
    assert [r.key for r in stats.rejected] == ["B000000037"]
    assert stats.rejected[0].reason.startswith("sink: the server drops the connection on it (")
    assert proxy.dropped >= 2  # the whole bulk at first; the document alone, twice, at last
    assert asins(sink.db) == {d["_id"] for d in documents} - {"B000000037"}


def test_an_unreachable_server_is_raised_and_no_document_is_blamed() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = mongo_client(f"mongodb://127.0.0.1:{port}/", server_selection_timeout_ms=300)
    unreachable = MongoSink(client["unreachable"])
    try:
        with pytest.raises(ConnectionFailure):
            unreachable.upsert_products([product("B000000001", 1, 1.0)])
        with pytest.raises(ConnectionFailure):
            unreachable.insert_quarantined([{"_id": "t:0:1", "reason": "x", "raw_value": "{}"}])
    finally:
        client.close()


def test_a_quarantine_record_the_sink_refuses_is_stored_reduced_or_logged_and_skipped(
    sink: MongoSink, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"_id": "t:0:1", "reason": "price: below 0", "raw_value": "{}", "_kafka_ts": None}
    not_text = {"_id": "t:0:2", "_topic": "t", "_partition": 0, "_offset": 2, "reason": "value: not one JSON object"}
    not_text |= {"raw_value": "{\ud800}", "raw_length": 3}
    hopeless = {"_id": ["t", 0, 3], "reason": "price: below 0", "raw_value": "{}"}

    with caplog.at_level(logging.ERROR, logger="spark_jobs.mongo_sink"):
        stats = sink.insert_quarantined([good, not_text, hopeless])

    utf8_reason = "sink: raw_value is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"
    id_reason = "sink: _id is an array (MongoDB refuses arrays as _id)"
    assert stats == WriteStats(written=2, rejected=[Rejected("t:0:2", utf8_reason), Rejected(["t", 0, 3], id_reason)])
    assert list(sink.db.quarantine.find().sort("_id", 1)) == [
        good,
        {
            "_id": "t:0:2",
            "_topic": "t",
            "_partition": 0,
            "_offset": 2,
            "reason": "value: not one JSON object",
            "raw_value": f"(not stored: {utf8_reason})",
            "raw_length": 3,
        },
    ]
    assert f"quarantine: record ['t', 0, 3] cannot be stored even reduced ({id_reason}): skipped" in caplog.text


def test_a_category_the_sink_refuses_is_rejected_and_renames_no_product(sink: MongoSink) -> None:
    sink.upsert_products([product("B000000001", 1, 1.0, category_id=2)])

    stats = sink.upsert_categories(
        [
            {"_id": 1, "id": 1, "category_name": "Luggage", "_v": 1},
            {"_id": 2, "id": 2, "category_name": "Bags\ud800", "_v": 1},
        ]
    )

    reason = "sink: category_name is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"
    assert stats == WriteStats(written=1, rejected=[Rejected(2, reason)])
    assert [d["_id"] for d in sink.db.categories.find()] == [1]
    assert sink.db.products.find_one({"_id": "B000000001"})["category_name"] == "Suitcases"


def test_a_gold_row_the_sink_refuses_is_rejected_and_its_old_figures_removed(sink: MongoSink) -> None:
    sink.replace_gold(catalog.GOLD_SUMMARY, [{"_id": "a", "n": 1}, {"_id": "b", "n": 2}])

    stats = sink.replace_gold(catalog.GOLD_SUMMARY, [{"_id": "a", "n": 3}, {"_id": "b", "n": float("nan")}])

    assert stats == WriteStats(
        written=1, rejected=[Rejected("b", "sink: n is NaN (MongoDB serves finite numbers only)")]
    )
    assert list(sink.db.gold_summary.find()) == [{"_id": "a", "n": 3}]


def test_collections_written_with_offset_versions_are_named(sink: MongoSink) -> None:
    assert sink.outdated_versions() == []
    sink.db.products.insert_one({"_id": "B000000001", "_v": 17})
    sink.db.categories.insert_one({"_id": 1, "_v": "0000000000001.0000000000000000001.0000000000"})
    assert sink.outdated_versions() == [f"MongoDB {sink.db.name}.products"]
