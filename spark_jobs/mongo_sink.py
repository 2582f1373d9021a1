"""The MongoDB serving collections' writer: version-guarded bulk upserts by `_id`.

The write model is the one the MongoDB Kafka sink connector and quix-streams' MongoDB sink use: a bulk of
`ReplaceOne(filter, document, upsert=True)`, unordered, keyed by `_id`. The filter carries the version
guard `{_id: key, _v: {$lte: version}}`:

- the stored document is older or the same version: it is replaced (a replayed micro-batch rewrites the
  same document, so replays change nothing);
- no document has that key: the upsert inserts it;
- the stored document is newer: the filter matches nothing, the upsert tries to insert a second document
  with that `_id` and the server refuses it with a duplicate-key error (11000). That is a stale write: it
  is counted, not raised, and the newer document stays.

A document the server cannot store must not block its topic. Each one is first checked against what BSON
and MongoDB can hold (`sink_problem`); one that fails is rejected with that reason and the others are sent.
A bulk that still fails is narrowed down: a write error names its document; a bulk refused whole, or a
dropped connection, is retried in halves until the document that fails is alone, and it is rejected when it
fails alone while the server still answers a ping. Rejected documents come back in `WriteStats.rejected`;
the job quarantines them. A server that does not answer (or says it cannot write now) is raised, so the
micro-batch fails and is replayed from its checkpoint.

The job hands this class documents (`_id` already set) and names, never MongoDB filters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from bson.errors import BSONError
from pymongo import ASCENDING, ReplaceOne, UpdateMany, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
)

from lakehouse import catalog
from lakehouse.catalog import ServingCollection
from lakehouse.mongo import serving_db
from lakehouse.settings import Settings
from spark_jobs.bson_limits import MAX_DOCUMENT_BYTES, shown, sink_problem, value_problem

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# Documents per bulk_write (Settings.mongo_bulk_size): large enough to amortise the round trip, small enough
# to stay far below the 48 MB message limit with 4 KB titles (1,000 x ~10 KB).
BULK_CHUNK = 1_000

# Error codes that blame the server, not a document (pymongo's not-primary and retryable codes, authentication,
# time limits, write concern, write conflicts): raised for a replay, never turned into rejected documents.
SERVER_SIDE_CODES = frozenset(
    {6, 7, 13, 18, 50, 64, 89, 91, 112, 134, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436}
)
# What a bulk can fail with because of one of its documents: the server's refusal, a dropped connection, or
# the driver's own encoding of it.
DOCUMENT_FAILURES = (PyMongoError, BSONError, OverflowError, UnicodeEncodeError)

# What the readers' queries filter and sort by (lakehouse/catalog.py; checked with explain in the tests), per
# collection name.
INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {c.name: c.indexes for c in catalog.ALL if c.indexes}
# What a quarantine record keeps when it cannot be stored whole: what finds it in Kafka, and why it is there.
QUARANTINE_COORDINATES = ("_id", "_topic", "_partition", "_offset", "_kafka_ts", "key", "reason")


@dataclass(frozen=True)
class Rejected:
    """A document the sink cannot store: its `_id` (`key`) and why (`reason`, `sink: <field> ... (<limit>)`).
    `document` is the document itself (a served product carries its Kafka coordinates); not compared."""

    key: Any
    reason: str
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class WriteStats:
    """What one call wrote: documents inserted or replaced, stale ones refused by the version guard, and the
    documents the sink rejected (every one, in input order within a chunk)."""

    written: int = 0
    stale: int = 0
    stale_keys: list[Any] = field(default_factory=list, compare=False)  # a few examples, for the log
    rejected: list[Rejected] = field(default_factory=list)

    def add(self, other: WriteStats) -> None:
        self.written += other.written
        self.stale += other.stale
        self.stale_keys = (self.stale_keys + other.stale_keys)[:5]
        self.rejected = self.rejected + other.rejected


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def guarded_replace(document: Mapping[str, Any]) -> ReplaceOne:
    """Replace the stored document unless it carries a newer `_v`; insert when there is none."""
    return ReplaceOne({"_id": document["_id"], "_v": {"$lte": document["_v"]}}, document, upsert=True)


def replace_if_older(document: Mapping[str, Any]) -> ReplaceOne:
    """The speed layer's guard: replace the stored document only when it carries an older `_v`; insert when
    there is none. A stored equal `_v` is the job's write of that version (with the category name it joined
    and any rename since), which the speed layer must not undo; the job's own guard (`guarded_replace`) lets
    its write replace the speed layer's."""
    return ReplaceOne({"_id": document["_id"], "_v": {"$lt": document["_v"]}}, document, upsert=True)


def renames_products(stored: Mapping[str, Any] | None, category: Mapping[str, Any]) -> bool:
    """Whether writing `category` changes the name its products are served with: it is new, or renamed by a
    version `guarded_replace` lets replace the `stored` one (not an older version read later). MongoDB's
    `$lte` matches only a stored `_v` of the same type, so a missing or differently typed one renames
    nothing either (the guard refuses that write as stale)."""
    if stored is None:
        return True
    if stored.get("category_name") == category.get("category_name"):
        return False
    stored_version = stored.get("_v")
    return type(stored_version) is type(category["_v"]) and stored_version <= category["_v"]


def replace_by_id(document: Mapping[str, Any]) -> ReplaceOne:
    """For documents that carry no version: what the batch computed replaces what is stored."""
    return ReplaceOne({"_id": document["_id"]}, document, upsert=True)


def set_fields(document: Mapping[str, Any]) -> UpdateOne:
    """Sets the document's fields, keeping the stored document's others (another writer's, e.g. `lag`)."""
    fields = {name: value for name, value in document.items() if name != "_id"}
    return UpdateOne({"_id": document["_id"]}, {"$set": fields}, upsert=True)


def checked(documents: Iterable[Mapping[str, Any]], max_bytes: int) -> tuple[list[Mapping[str, Any]], list[Rejected]]:
    """`documents` split into those the sink can send and those `sink_problem` rejects (input order kept)."""
    storable, rejected = [], []
    for document in documents:
        reason = sink_problem(document, max_bytes)
        if reason is None:
            storable.append(document)
        else:
            rejected.append(Rejected(document.get("_id"), reason, document))
    return storable, rejected


def reduced_quarantine(document: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """A quarantine record the sink refused, cut to what finds and explains it: its storable coordinates, key
    and reason, `raw_value` replaced by a note naming the sink's `reason`, `raw_length` the raw value's length
    (characters; None when unknown)."""
    kept = {
        name: document[name]
        for name in QUARANTINE_COORDINATES
        if name in document and value_problem(document[name], name) is None
    }
    raw, length = document.get("raw_value"), document.get("raw_length")
    if not isinstance(length, int):
        length = len(raw) if isinstance(raw, str | bytes) else None
    return kept | {"raw_value": f"(not stored: {reason})", "raw_length": length}


# Sending and narrowing down -----------------------------------------------------------------------------------


def _bulk(
    collection: Collection, documents: Sequence[Mapping[str, Any]], operations: list[Any], again: bool = True
) -> WriteStats:
    """One unordered bulk; per-document write errors become stale or rejected documents. Raises what is not
    about the documents (write concern errors, server-side codes) and what fails the bulk as a whole.

    A duplicate-key error means the guard's filter matched nothing and a document with that `_id` exists: a
    newer version (stale), or one another writer inserted between the match and the insert (the speed layer
    and the job writing a new key at once; MongoDB retries such an upsert itself only when its filter is an
    equality on `_id` alone, and the guard's `_v` range is not). So those operations are sent once more
    (`again`): then the guard sees the inserted document, and a second duplicate-key error is a stale write.
    """
    try:
        result = collection.bulk_write(operations, ordered=False)
        return WriteStats(written=result.upserted_count + result.matched_count)
    except BulkWriteError as error:
        details = error.details
        errors = details["writeErrors"]
        if details["writeConcernErrors"] or any(e["code"] in SERVER_SIDE_CODES for e in errors):
            raise
        duplicates = [e["index"] for e in errors if e["code"] == DUPLICATE_KEY]
        rejected = [
            Rejected(documents[e["index"]].get("_id"), _refusal(e["errmsg"], e["code"]), documents[e["index"]])
            for e in errors
            if e["code"] != DUPLICATE_KEY
        ]
        stats = WriteStats(written=details["nUpserted"] + details["nMatched"], rejected=rejected)
        if again and duplicates:
            stats.add(_bulk(collection, [documents[i] for i in duplicates], [operations[i] for i in duplicates], False))
        else:
            stale = [documents[i].get("_id") for i in duplicates]
            stats.add(WriteStats(stale=len(stale), stale_keys=stale[:5]))
        return stats


def _refusal(message: str, code: int | None) -> str:
    return f"sink: MongoDB refused it: {shown(message)} (code {code})"


def _failure_reason(error: Exception) -> str:
    """The reason of a document that failed alone with `error`."""
    if isinstance(error, OperationFailure):
        return _refusal(str((error.details or {}).get("errmsg", error)), error.code)
    if isinstance(error, ConnectionFailure):
        return f"sink: the server drops the connection on it ({shown(str(error))})"
    return f"sink: BSON cannot encode it ({shown(str(error))})"


class ServerRefusesAll(RuntimeError):
    """Every document of a bulk failed alone with one reason: the server's state (disk full, a quota, a
    setting), not the documents. Raised, so the batch fails loudly instead of quarantining a whole topic."""


def _raise_if_refused_alike(collection: Collection, documents: Sequence[Mapping[str, Any]], sent: WriteStats) -> None:
    reasons = {rejection.reason for rejection in sent.rejected}
    if len(documents) > 1 and len(sent.rejected) == len(documents) and len(reasons) == 1:
        raise ServerRefusesAll(
            f"{collection.full_name}: MongoDB refused all {len(documents)} documents: {reasons.pop()}"
        )


class MongoSink:
    """Owns the serving database's client and the whole write strategy of the streaming job and backfill."""

    def __init__(self, db: Database, chunk_size: int = BULK_CHUNK) -> None:
        self.db = db
        self.chunk_size = chunk_size
        self.max_document_bytes = MAX_DOCUMENT_BYTES

    @classmethod
    def connect(cls, config: Settings, app_name: str = "amazon-lakehouse-job") -> MongoSink:
        """The sink for MONGO_URI / MONGO_DB; `app_name` names its connections in the server's logs."""
        return cls(serving_db(config, app_name=app_name), config.mongo_bulk_size)

    def setup(self) -> None:
        """Ask the server its document size limit (fail fast with the URI's error) and create the indexes the
        readers need. Creating them on an empty collection is cheap; on one already indexed it is a no-op."""
        hello = self.db.command("hello")
        self.max_document_bytes = int(hello.get("maxBsonObjectSize", MAX_DOCUMENT_BYTES))
        for name, keys in INDEXES.items():
            for fields in keys:
                self.db[name].create_index([(field, ASCENDING) for field in fields])

    def collection(self, served: ServingCollection) -> Collection:
        return self.db[served.name]

    def _write(
        self,
        collection: Collection,
        documents: Iterable[Mapping[str, Any]],
        operation: Callable[[Mapping[str, Any]], ReplaceOne | UpdateOne],
    ) -> WriteStats:
        stats = WriteStats()
        for chunk in chunks(documents, self.chunk_size):
            storable, rejected = checked(chunk, self.max_document_bytes)
            stats.add(WriteStats(rejected=rejected))
            sent = self._send(collection, storable, [operation(d) for d in storable])
            _raise_if_refused_alike(collection, storable, sent)
            stats.add(sent)
        return stats

    def _send(
        self, collection: Collection, documents: Sequence[Mapping[str, Any]], operations: list[Any]
    ) -> WriteStats:
        """Writes `operations` (the i-th made from the i-th document); when the bulk fails as a whole, its
        halves are sent apart until the failing document is alone. Raises when the server is the problem."""
        if not operations:
            return WriteStats()
        try:
            return _bulk(collection, documents, operations)
        except BulkWriteError:
            raise  # _bulk lets through only what is not about one document
        except DOCUMENT_FAILURES as error:
            self._raise_unless_about_documents(error)
            if len(operations) == 1:
                return self._send_alone(collection, documents[0], operations[0], error)
            middle = len(operations) // 2
            stats = self._send(collection, documents[:middle], operations[:middle])
            stats.add(self._send(collection, documents[middle:], operations[middle:]))
            return stats

    def _send_alone(
        self, collection: Collection, document: Mapping[str, Any], operation: Any, error: Exception
    ) -> WriteStats:
        if isinstance(error, ConnectionFailure):
            # A connection can drop for the network's own reasons: the document is blamed when it fails twice.
            try:
                return _bulk(collection, [document], [operation])
            except BulkWriteError:
                raise
            except DOCUMENT_FAILURES as again:
                self._raise_unless_about_documents(again)
                error = again
        return WriteStats(rejected=[Rejected(document.get("_id"), _failure_reason(error), document)])

    def _raise_unless_about_documents(self, error: Exception) -> None:
        """Raises `error` when the server, not a document, is the problem: a server-side code, or no ping."""
        if isinstance(error, NetworkTimeout | ExecutionTimeout) or (
            isinstance(error, OperationFailure)
            and (error.code in SERVER_SIDE_CODES or error.has_error_label("RetryableWriteError"))
        ):
            raise error  # a slow network or server, or one that cannot write now: a transient failure
        try:
            self.db.command("ping")
        except PyMongoError as unanswered:
            raise error from unanswered

    def _upsert_versioned(self, collection: Collection, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        stats = self._write(collection, documents, guarded_replace)
        if stats.stale:
            # The job writes silver's current rows, so MongoDB holding newer versions means it is ahead of
            # silver: the speed layer served a key's next version before this batch (the usual case), or
            # silver or the checkpoint was reset while MongoDB was kept.
            log.info(
                "%s: %d write(s) refused by the version guard, MongoDB holds newer versions (e.g. %s; "
                "served by the speed layer, or MongoDB kept while silver was reset)",
                collection.name,
                stats.stale,
                ", ".join(map(str, stats.stale_keys)),
            )
        return stats

    def upsert_products(self, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        """Products by asin, version-guarded. Every document is written, stale, or in `rejected`."""
        products = self.collection(catalog.PRODUCTS)
        return _logged(products, self._upsert_versioned(products, documents))

    def upsert_products_ahead(self, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        """The speed layer's write of products by asin (`replace_if_older`): a stored document of the same or a
        newer version is kept and counted as stale. Every document is written, stale, or in `rejected`."""
        products = self.collection(catalog.PRODUCTS)
        return _logged(products, self._write(products, documents, replace_if_older))

    def upsert_categories(self, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        """Categories, and the name of every product of a category whose served name this changes. The
        products are renamed first: the category document, written last, marks the rename as done, so a
        batch replayed after a crash between the two renames them again. A version older than the one
        served renames nothing (the version guard then refuses the category too). A category the sink
        rejects (or whose rename the server refuses) is in `rejected`, and its products keep their name."""
        categories = self.collection(catalog.CATEGORIES)
        storable, rejected = checked(documents, self.max_document_bytes)
        stored = {
            d["_id"]: d
            for d in categories.find({"_id": {"$in": [d["_id"] for d in storable]}}, {"category_name": 1, "_v": 1})
        }
        renaming = self._rename_products([d for d in storable if renames_products(stored.get(d["_id"]), d)])
        not_renamed = {id(r.document) for r in renaming.rejected}
        stats = self._upsert_versioned(categories, [d for d in storable if id(d) not in not_renamed])
        stats.rejected = rejected + renaming.rejected + stats.rejected
        return _logged(categories, stats)

    def _rename_products(self, categories: list[Mapping[str, Any]]) -> WriteStats:
        """Only `rejected` counts: `written` would be products matched, not categories."""
        operations = [
            UpdateMany(
                {"category_id": d["_id"], "category_name": {"$ne": d.get("category_name")}},
                {"$set": {"category_name": d.get("category_name")}},
            )
            for d in categories
        ]
        return self._send(self.collection(catalog.PRODUCTS), categories, operations)

    def insert_quarantined(self, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        """A quarantined record never changes (its `_id` is its Kafka coordinates): a replay rewrites it.

        `rejected` lists the records that could not be stored as they were; they are already handled (stored
        as `reduced_quarantine`, or, when even that fails, logged as an ERROR and skipped), so the caller must
        not quarantine them again. Raises only when the server is unreachable, never for one record."""
        quarantine = self.collection(catalog.QUARANTINE)
        stats = _logged(quarantine, self._write(quarantine, documents, replace_by_id))
        if stats.rejected:
            reduced = [reduced_quarantine(r.document, r.reason) for r in stats.rejected]
            fallback = self._write(quarantine, reduced, replace_by_id)
            stats.written += fallback.written
            for lost in fallback.rejected:
                log.error("quarantine: record %s cannot be stored even reduced (%s): skipped", lost.key, lost.reason)
        return stats

    def replace_gold(self, served: ServingCollection, documents: list[Mapping[str, Any]]) -> WriteStats:
        """A small derived collection whose new contents replace the old ones. A rejected row's previous
        version is deleted too: the collection never mixes two batches' figures."""
        collection = self.collection(served)
        stats = _logged(collection, self._write(collection, documents, replace_by_id))
        rejected = {id(r.document) for r in stats.rejected}
        collection.delete_many({"_id": {"$nin": [d["_id"] for d in documents if id(d) not in rejected]}})
        return stats

    def replace_by_ids(self, served: ServingCollection, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        """Documents that are the same whenever they are computed again (a price-history version, a category
        point of a time bucket): each replaces the stored one with its `_id`, the others stay. Idempotent."""
        collection = self.collection(served)
        return _logged(collection, self._write(collection, documents, replace_by_id))

    def set_by_ids(self, served: ServingCollection, documents: Iterable[Mapping[str, Any]]) -> WriteStats:
        """Sets each document's fields on the one with its `_id` (inserted if none), keeping the fields other
        writers set on it (the listener's `lag` on a pipeline event). Idempotent."""
        collection = self.collection(served)
        return _logged(collection, self._write(collection, documents, set_fields))

    def update_fields(self, served: ServingCollection, key: Any, fields: Mapping[str, Any]) -> None:
        """Sets `fields` on the document `key` (inserted if none); for the listener's small, checked values."""
        self.collection(served).update_one({"_id": key}, {"$set": dict(fields)}, upsert=True)

    def drop_derived(self) -> None:
        """Before a rebuild from bronze: drop every collection the lakehouse derives (catalog.DERIVED; the kept
        ones, such as past gold points and the pipeline's events, stay), then re-create the indexes (on empty
        collections, where building them costs nothing)."""
        derived = {collection.name for collection in catalog.DERIVED}
        for name in self.db.list_collection_names():
            if name in derived:
                self.db.drop_collection(name)
        # The last gold refresh names versions of the silver being rebuilt, which a new silver's may repeat.
        self.collection(catalog.PIPELINE_STATUS).delete_one({"_id": catalog.GOLD_REFRESH_STATUS_ID})
        self.setup()

    def outdated_versions(self) -> list[str]:
        """Versioned collections whose documents carry a number as `_v` (an earlier release's Kafka offset),
        which the text versions' guard would never replace. One document tells: a release writes them all alike."""
        outdated = []
        for served in (catalog.PRODUCTS, catalog.CATEGORIES):
            document = self.collection(served).find_one({}, {"_v": 1})
            if document is not None and not isinstance(document.get("_v"), str):
                outdated.append(f"MongoDB {self.db.name}.{served.name}")
        return outdated

    def write_status(self, document: dict[str, Any]) -> None:
        """A `pipeline_status` document, replacing the one with its `_id` (catalog.PIPELINE_STATUS's keys)."""
        self.collection(catalog.PIPELINE_STATUS).replace_one({"_id": document["_id"]}, document, upsert=True)


def _logged(collection: Collection, stats: WriteStats) -> WriteStats:
    if stats.rejected:
        log.warning(
            "%s: %d document(s) the sink cannot store, rejected for quarantine (e.g. %s)",
            collection.name,
            len(stats.rejected),
            "; ".join(f"{shown(str(r.key))}: {r.reason}" for r in stats.rejected[:3]),
        )
    return stats
