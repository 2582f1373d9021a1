"""The stack's MongoDB-wire server on the reads the data browser pages with: a limited `find({})` (which our
patch of SecantusDB answers by stopping after skip + limit rows, stack/patches/) returns exactly the head of the
unlimited read, after inserts, growing and shrinking replacements, upserts and deletes."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import ReplaceOne
from pymongo.collection import Collection

from lakehouse.mongo import mongo_client
from stack.services import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def collection(infrastructure: LocalStack) -> Iterator[Collection[dict[str, Any]]]:
    client = mongo_client(infrastructure.settings.mongo_uri)
    name = f"server_{uuid.uuid4().hex[:8]}"
    yield client[name]["documents"]
    client.drop_database(name)
    client.close()


def churned(collection: Collection[dict[str, Any]]) -> None:
    """Writes of every kind the job issues, with `_id`s out of order, so insertion order is not `_id` order."""
    shuffle = random.Random(7)
    ids = [f"B{n:05d}" for n in range(300)]
    shuffle.shuffle(ids)
    collection.insert_many([{"_id": asin, "n": n} for n, asin in enumerate(ids)])
    collection.bulk_write(
        [ReplaceOne({"_id": asin}, {"n": -1, "title": "x" * shuffle.randint(0, 2_000)}) for asin in ids[::7]]
    )
    collection.delete_many({"_id": {"$in": ids[::11]}})
    collection.bulk_write([ReplaceOne({"_id": f"A{n:05d}"}, {"n": n}, upsert=True) for n in range(40)])


@pytest.mark.parametrize(("skip", "limit"), [(0, 25), (0, 1), (25, 25), (250, 25), (320, 25), (0, 1_000)])
def test_a_limited_read_is_the_head_of_the_full_read(
    collection: Collection[dict[str, Any]], skip: int, limit: int
) -> None:
    churned(collection)
    everything = list(collection.find({}))
    assert len(everything) == 300 - len(range(0, 300, 11)) + 40
    assert list(collection.find({}).skip(skip).limit(limit)) == everything[skip : skip + limit]
    assert list(collection.find({}, {"n": 1}).skip(skip).limit(limit).batch_size(4)) == [
        {"_id": d["_id"], "n": d["n"]} for d in everything[skip : skip + limit]
    ]


def test_a_limited_read_of_a_missing_collection_is_empty(collection: Collection[dict[str, Any]]) -> None:
    assert list(collection.find({}).limit(25)) == []
