"""MongoDB write strategies for the job's serving collections, measured on the local MongoDB-wire server.

    .venv/bin/python -m bench.mongo_writes [--existing 20000 --changed 2000]

A collection holds `existing` product documents; a micro-batch brings `changed` documents, half updates
of stored ones, half new. Each strategy writes that batch twice (the second time is a replay) and must
leave exactly one current document per key. Strategies that stall are given a time budget and reported
at the rate they reached. The baseline is the job's strategy (delete the updated keys, insert_many).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from itertools import islice
from typing import Any

from pymongo import MongoClient, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import NetworkTimeout

from client.transformer import Record, read_products
from dataset.generate import write_dataset
from lakehouse.settings import PROJECT_ROOT, load_settings
from spark_jobs import mongo_sink
from stack.mongo import MongoServer

CHUNK = 100


def documents(count: int) -> list[dict[str, Any]]:
    products, _ = write_dataset(PROJECT_ROOT / "var" / "bench" / "mongo", count, 248, seed=3)
    rows = islice(read_products(products), count)
    return [{"_id": row.data["asin"], **row.data} for row in rows if isinstance(row, Record)]


def job_strategy(collection: Collection, batch: list[dict], stored: set[str]) -> None:
    updated = [d["_id"] for d in batch if d["_id"] in stored]
    mongo_sink.mirror(collection, batch, mongo_sink.field_in("_id", updated))


def replace_upserts(collection: Collection, batch: list[dict], _stored: set[str]) -> None:
    _in_chunks(
        batch,
        lambda chunk: collection.bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in chunk], ordered=False
        ),
    )


def update_upserts(collection: Collection, batch: list[dict], _stored: set[str]) -> None:
    _in_chunks(
        batch,
        lambda chunk: collection.bulk_write(
            [UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in chunk], ordered=False
        ),
    )


def _fields(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "_id"}  # _id is immutable in an update


class OutOfTime(Exception):
    pass


BUDGET = {"seconds": 60.0, "deadline": 0.0, "written": 0}


def _in_chunks(batch: list[dict], write: Callable[[list[dict]], Any]) -> None:
    for start in range(0, len(batch), CHUNK):
        if time.monotonic() > BUDGET["deadline"]:
            raise OutOfTime
        write(batch[start : start + CHUNK])
        BUDGET["written"] += min(CHUNK, len(batch) - start)


STRATEGIES = {
    "delete updated keys + insert_many (the job's)": job_strategy,
    "bulk ReplaceOne upserts": replace_upserts,
    "bulk UpdateOne $set upserts": update_upserts,
}


def measure(collection: Collection, base: list[dict], batch: list[dict], strategy: Callable) -> tuple[float, str]:
    # A collection of its own: dropping one right after the delete + insert_many strategy stalls FerretDB 1.24.
    collection.insert_many(base)
    stored = {d["_id"] for d in base}
    BUDGET.update(deadline=time.monotonic() + BUDGET["seconds"], written=0)
    started = time.perf_counter()
    try:
        strategy(collection, batch, stored)
        strategy(collection, batch, stored | {d["_id"] for d in batch})  # the replay
    except NetworkTimeout:
        return BUDGET["written"] / BUDGET[
            "seconds"
        ], f"one bulk of {CHUNK} did not finish within {BUDGET['seconds']:.0f}s"
    except OutOfTime:
        seconds = time.perf_counter() - started
        return BUDGET["written"] / seconds, f"stopped after {seconds:.0f}s, {BUDGET['written']:,} documents written"
    seconds = time.perf_counter() - started
    expected = len(stored | {d["_id"] for d in batch})
    exact = collection.count_documents({}) == expected
    return 2 * len(batch) / seconds, f"{seconds:.1f}s, one document per key: {exact}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--existing", type=int, default=20_000)
    parser.add_argument("--changed", type=int, default=2_000)
    parser.add_argument("--budget-seconds", type=float, default=60.0)
    args = parser.parse_args()
    BUDGET["seconds"] = args.budget_seconds
    config = load_settings()
    docs = documents(args.existing + args.changed // 2)
    base = docs[: args.existing]
    updates = [{**d, "price": round(d["price"] + 1, 2)} for d in base[: args.changed // 2]]
    batch = updates + docs[args.existing :]
    server = MongoServer(config)
    results = {}
    for index, (name, strategy) in enumerate(STRATEGIES.items()):
        server.start()
        client = MongoClient(config.mongo_uri, socketTimeoutMS=int(args.budget_seconds * 1000))
        db = client[f"bench_writes_{uuid.uuid4().hex[:8]}"]
        results[name] = measure(db[f"products_{index}"], base, batch, strategy)
        client.close()
        server.stop()  # a stalled FerretDB keeps working on the abandoned request
    baseline = next(iter(results.values()))[0]
    print(f"{args.existing:,} stored documents, a batch of {len(batch):,} ({len(updates):,} updates), written twice:")
    for name, (rate, note) in results.items():
        print(f"  {name}: {rate:,.0f} documents/s ({note}); {rate / baseline:.2f}x the job's strategy")
    print("(the bench_writes_* databases are left: dropping one can stall FerretDB 1.24 too)")


if __name__ == "__main__":
    main()
