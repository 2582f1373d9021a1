"""Writes to the MongoDB serving collections as a mirror of the Delta silver tables.

Delta decides what is newest: silver MERGEs keep the higher Kafka offset per key. MongoDB then receives,
for every key a micro-batch touched, silver's current row. Replaying a batch writes the same rows again,
and an older record can never reach MongoDB because it never won in silver.

Why delete + insert and not update-upserts: FerretDB 1.x on SQLite (the local MongoDB-wire server) pushes
`{_id: ...}` filters down but SQLite still scans the whole table for them (`explain` shows
`SCAN`), so each keyed update or lookup costs a full scan, about 0.2 s per 100k documents, and bulk
update-upserts stall it for minutes. insert_many is fast (about 30k documents/s). The job knows from silver
which keys were already there, so new keys are only inserted, updated ones are deleted by `_id`, and the
products of a renamed category by `category_id`. Real MongoDB runs the same code path.
Between the delete and the insert a reader can miss those documents for a moment; a crash there is
healed by the replay of the unfinished micro-batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

INSERT_CHUNK = 5_000
DELETE_CHUNK = 20_000
DUPLICATE_KEY = 11000


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def insert_replacing(collection: Collection, documents: Sequence[dict[str, Any]]) -> None:
    """insert_many; a document whose _id is already stored replaces the stored one."""
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        errors = error.details["writeErrors"]
        if any(e["code"] != DUPLICATE_KEY for e in errors):
            raise
        clashing = [documents[e["index"]] for e in errors]
        collection.delete_many({"_id": {"$in": [d["_id"] for d in clashing]}})
        collection.insert_many(clashing, ordered=False)


def field_in(field: str, values: Sequence[Any]) -> list[dict[str, Any]]:
    """`{field: {$in: [...]}}` filters. FerretDB checks each document against the whole list, so the cost
    is documents x values: give renamed categories by category_id (a few values), not by their asins."""
    return [{field: {"$in": chunk}} for chunk in chunks(values, DELETE_CHUNK)]


def mirror(collection: Collection, documents: Iterable[dict[str, Any]], stale: Iterable[dict[str, Any]]) -> None:
    """Delete what the `stale` filters match, then insert `documents` (replacing any left with their _id)."""
    for condition in stale:
        collection.delete_many(condition)
    for chunk in chunks(documents, INSERT_CHUNK):
        insert_replacing(collection, chunk)


def replace_all(collection: Collection, documents: list[dict[str, Any]]) -> None:
    """For the small derived collections (gold): the new contents replace the old ones."""
    collection.delete_many({"_id": {"$nin": [d["_id"] for d in documents]}})
    mirror(collection, documents, field_in("_id", [d["_id"] for d in documents]))


def ensure_indexes(db: Database) -> None:
    db.products.create_index([("category_id", ASCENDING)])
    db.quarantine.create_index([("reason", ASCENDING)])


def connect(uri: str, database: str) -> Database:
    return MongoClient(uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=600_000)[database]
