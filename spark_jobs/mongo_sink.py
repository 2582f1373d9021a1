"""Writes to the MongoDB serving collections, idempotently and version-guarded.

FerretDB 1.x (the local MongoDB-wire server) applies updates one document at a time, and bulk update
upserts on existing documents stall it for tens of seconds per few hundred documents, while find/delete
by `_id $in` and insert_many are fast. So a batch is written as: read the stored versions of its keys,
drop the records that are not newer, delete the keys being replaced, insert the new documents. Replaying
a batch therefore changes nothing, and an older record can never overwrite a newer one. Real MongoDB runs
the same code path. Between the delete and the insert a reader can miss those documents for a moment;
a crash there is healed by the replay of the unfinished micro-batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

CHUNK = 5_000
VERSION_FIELD = "_v"


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def newer_only(collection: Collection, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents whose version is above the stored one (or that are not stored yet)."""
    stored = {
        doc["_id"]: doc.get(VERSION_FIELD, -1)
        for doc in collection.find({"_id": {"$in": [d["_id"] for d in documents]}}, {VERSION_FIELD: 1})
    }
    return [d for d in documents if d["_id"] not in stored or d[VERSION_FIELD] > stored[d["_id"]]]


def replace_newer(collection: Collection, documents: Iterable[dict[str, Any]]) -> int:
    """Writes each document unless a same-or-newer version is stored; returns how many were written."""
    written = 0
    for chunk in chunks(documents):
        fresh = newer_only(collection, chunk)
        if fresh:
            collection.delete_many({"_id": {"$in": [d["_id"] for d in fresh]}})
            collection.insert_many(fresh, ordered=False)
            written += len(fresh)
    return written


def replace_all(collection: Collection, documents: list[dict[str, Any]]) -> None:
    """For small derived collections (gold): the new contents replace the old ones."""
    keep = [d["_id"] for d in documents]
    collection.delete_many({"_id": {"$nin": keep}})
    for chunk in chunks(documents):
        collection.delete_many({"_id": {"$in": [d["_id"] for d in chunk]}})
        collection.insert_many(chunk, ordered=False)


def set_category_names(products: Collection, names: dict[int, str]) -> int:
    """A category that arrives (or is renamed) after its products names them too."""
    changed = 0
    for category_id, name in names.items():
        result = products.update_many(
            {"category_id": category_id, "category_name": {"$ne": name}}, {"$set": {"category_name": name}}
        )
        changed += result.modified_count
    return changed


def ensure_indexes(db: Database) -> None:
    db.products.create_index([("category_id", ASCENDING)])
    db.products.create_index([("_kafka_ts", ASCENDING)])
    db.quarantine.create_index([("reason", ASCENDING)])


def connect(uri: str, database: str) -> Database:
    return MongoClient(uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=120_000)[database]
