"""mongo_sink._bulk's reading of a bulk's write errors, on a collection that answers as a server would."""

from __future__ import annotations

from typing import Any

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from spark_jobs.mongo_sink import DUPLICATE_KEY, WriteStats, _bulk, guarded_replace


class Answers:
    """A collection whose bulk_write answers the i-th call with the i-th of `answers`: the number of documents
    written, or the indexes (within that call) that failed with a duplicate-key error."""

    def __init__(self, *answers: int | list[int]) -> None:
        self.answers = list(answers)
        self.calls: list[list[ReplaceOne]] = []

    def bulk_write(self, operations: list[ReplaceOne], ordered: bool) -> Any:
        self.calls.append(operations)
        answer = self.answers.pop(0)
        if isinstance(answer, int):
            return type("Result", (), {"upserted_count": answer, "matched_count": 0})()
        errors = [{"index": i, "code": DUPLICATE_KEY, "errmsg": "E11000 duplicate key"} for i in answer]
        written = len(operations) - len(answer)
        raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": [], "nUpserted": written, "nMatched": 0})


def documents(count: int) -> list[dict[str, Any]]:
    return [{"_id": f"B{i:09d}", "_v": "1"} for i in range(count)]


def test_a_key_another_writer_inserted_meanwhile_is_sent_again_and_written() -> None:
    """The speed layer and the job inserting one new key at once: the loser's duplicate-key error is not
    a stale write; sent again, its guard sees the other's document and decides."""
    sent = documents(3)
    collection = Answers([1], 1)
    assert _bulk(collection, sent, [guarded_replace(d) for d in sent]) == WriteStats(written=3)  # type: ignore[arg-type]
    assert [op._filter["_id"] for op in collection.calls[1]] == ["B000000001"]


def test_a_second_duplicate_key_error_is_a_stale_write() -> None:
    sent = documents(3)
    collection = Answers([0, 2], [1])
    stats = _bulk(collection, sent, [guarded_replace(d) for d in sent])  # type: ignore[arg-type]
    assert stats == WriteStats(written=2, stale=1)
    assert stats.stale_keys == ["B000000002"]
    assert len(collection.calls) == 2, "sent again once, not until it passes"
