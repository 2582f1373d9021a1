"""The speed layer's loop: read the product topic as the job does (read_committed), serve each valid product
in MongoDB with a version guard, store the offsets read.

    python -m speed_layer        # KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_PRODUCTS, MONGO_URI, MONGO_DB,
                                 # SPEED_LAYER_GROUP (default speed-layer-<product topic>)

Why it exists: a micro-batch of the streaming job is a dozen Spark actions and Delta commits (40-50 s on
two cores), so through the job alone a product reached MongoDB p50 31-58 s, p99 60-70 s after its 201
(bench/freshness.py; README, "Freshness and scale"). This consumer writes it within a second; the job
still writes every version afterwards and stays the authority (silver, quarantine, category names and
renames, price history, gold).

How it stays consistent with the job:
- It serves only what the job serves, as the job serves it (documents.py), and only products: a category
  document written here would tell the job's sink that a rename is done before it renamed the products.
- Its guard refuses a stored equal or newer `_v` (mongo_sink.replace_if_older); the job's accepts an equal
  one. So a key's served version never goes back, and every version the job processes ends as the job's
  document: at the job's lag 0, MongoDB is what it would be without the speed layer. Except for records
  the job never reads (deleted from Kafka before it read them, or lost to a checkpoint reset after a topic
  was re-created: operator actions the job reports): what the speed layer served of them stays until
  `make backfill` rebuilds MongoDB from silver.
- It is stateless: its consumer group (`SPEED_LAYER_GROUP`) keeps its offsets, committed after the write
  (at least once; a record served twice is refused the second time). A new group starts at the topic's
  beginning, so nothing produced while it started is missed; what the job served already is refused by the
  guard (2,000 refused writes take 0.3-0.4 s, bench/mongo_servers.py). Anything it skips, misses (MongoDB
  away, a partition added before it noticed) or cannot write is served by the job's next micro-batch
  instead: nothing waits on it. When MongoDB does not answer at its start or Kafka fails fatally it logs
  it and starts again after RESTART_DELAY_S.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message
from pymongo.errors import PyMongoError

from lakehouse import catalog
from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.settings import Settings, settings
from spark_jobs.mongo_sink import MongoSink, ServerRefusesAll
from speed_layer.documents import Servable, Skip, latest_per_key, product_document, servable

log = logging.getLogger("speed_layer")

# Records per poll: one bulk_write of the sink on the default server (mongo_sink.BULK_CHUNK).
MAX_RECORDS_PER_POLL = 1_000
POLL_TIMEOUT_S = 0.1
LOG_EVERY_S = 10.0
RESTART_DELAY_S = 5.0


@dataclass
class Served:
    """What the speed layer did with the records it read: written to MongoDB, refused as stale (MongoDB held
    that version or a newer one), skipped per reason, rejected by the sink, or not written because MongoDB
    failed; and the largest delay from a written record's broker time to its write (seconds)."""

    read: int = 0
    written: int = 0
    stale: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    unwritten: int = 0
    max_delay_s: float = 0.0

    def add(self, other: Served) -> None:
        self.read += other.read
        self.written += other.written
        self.stale += other.stale
        self.skipped.update(other.skipped)
        self.rejected += other.rejected
        self.unwritten += other.unwritten
        self.max_delay_s = max(self.max_delay_s, other.max_delay_s)

    def summary(self) -> str:
        skipped = ", ".join(f"{count} {reason}" for reason, count in self.skipped.most_common()) or "none"
        return (
            f"read {self.read}, served {self.written}, already served {self.stale}, skipped: {skipped}; "
            f"rejected by the sink {self.rejected}, not written (MongoDB failed) {self.unwritten}; "
            f"largest delay from broker time to MongoDB {self.max_delay_s:.2f}s"
        )


def consumer_config(config: Settings) -> dict[str, Any]:
    return {
        "bootstrap.servers": config.kafka_bootstrap_servers,
        "group.id": config.speed_layer_group_id,
        "client.id": "speed-layer",
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        # Offsets are stored after MongoDB's write, then committed in the background (and at close).
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        # Partitions added to the topic are read within this much of their creation (the default is 5 min).
        "topic.metadata.refresh.interval.ms": 30_000,
    }


class SpeedLayer:
    """One consumer of the product topic and the MongoDB sink it serves through. Not thread-safe."""

    def __init__(self, consumer: Consumer, sink: MongoSink) -> None:
        self.consumer = consumer
        self.sink = sink

    @classmethod
    def connect(cls, config: Settings) -> SpeedLayer:
        """Subscribed to KAFKA_TOPIC_PRODUCTS, the sink's indexes created. Raises PyMongoError when MongoDB
        does not answer."""
        sink = MongoSink.connect(config, app_name="amazon-lakehouse-speed-layer")
        sink.setup()
        consumer = Consumer(consumer_config(config))
        consumer.subscribe([config.kafka_topic_products])
        return cls(consumer, sink)

    def serve_once(self) -> Served:
        """Reads what is committed (MAX_RECORDS_PER_POLL records, or what came within POLL_TIMEOUT_S: the most
        a record waits here), writes the servable products, stores the offsets read. Raises KafkaException on
        a fatal consumer error."""
        messages = [m for m in self.consumer.consume(MAX_RECORDS_PER_POLL, POLL_TIMEOUT_S) if _is_record(m)]
        served = self._write(messages) if messages else Served()
        self._store_positions()
        return served

    def _store_positions(self) -> None:
        """Stores each assigned partition's position as the offset to commit: past every record returned (and
        written), and past transaction markers and aborted records, which are never returned. (The last
        record's offset + 1 would be a transaction's commit marker: the group's lag would never reach 0.)"""
        positions = [tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0]
        if not positions:
            return
        try:
            self.consumer.store_offsets(offsets=positions)
        except KafkaException as error:  # a partition revoked since: its next owner reads it from the last commit
            log.debug("offsets not stored: %s", error)

    def _write(self, messages: list[Message]) -> Served:
        served = Served(read=len(messages))
        records: list[Servable] = []
        for message in messages:
            record = servable(message)
            if isinstance(record, Skip):
                served.skipped[record.reason] += 1
            else:
                records.append(record)
        try:
            names = self._category_names({record.product.category_id for record in records})
            documents = latest_per_key([product_document(r, names.get(r.product.category_id)) for r in records])
            stats = self.sink.upsert_products_ahead(documents)
        except (PyMongoError, ServerRefusesAll) as error:
            log.warning("MongoDB did not take %d product(s), the streaming job serves them: %s", len(records), error)
            served.unwritten = len(records)
            return served
        served.written, served.rejected = stats.written, len(stats.rejected)
        served.stale = stats.stale + len(records) - len(documents)
        if stats.written:
            served.max_delay_s = time.time() - min(d["_kafka_ts"].timestamp() for d in documents)
        return served

    def _category_names(self, ids: set[int]) -> dict[int, str | None]:
        """The served name of each category of `ids` that MongoDB has (one `$in` by `_id`)."""
        if not ids:
            return {}
        found = self.sink.collection(catalog.CATEGORIES).find({"_id": {"$in": list(ids)}}, {"category_name": 1})
        return {document["_id"]: document.get("category_name") for document in found}

    def run(self, stop: threading.Event) -> Served:
        """Serves until `stop` is set, logging what it did every LOG_EVERY_S seconds; returns the totals."""
        total, recent, logged_at = Served(), Served(), time.monotonic()
        while not stop.is_set():
            recent.add(self.serve_once())
            if time.monotonic() - logged_at >= LOG_EVERY_S:
                if recent.read:
                    log.info("last %.0fs: %s", LOG_EVERY_S, recent.summary())
                total.add(recent)
                recent, logged_at = Served(), time.monotonic()
        total.add(recent)
        return total

    def close(self) -> None:
        """Commits the stored offsets and leaves the group."""
        self.consumer.close()
        self.sink.db.client.close()


def _is_record(message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.fatal():
        raise KafkaException(error)
    log.debug("consumer: %s", error)
    return False


def speed_layer_lag(config: Settings) -> int | None:
    """Committed product records the speed layer has not read yet (its group's committed offsets against the
    topic's last stable offsets); None before its group committed anything. Raises KafkaAdminError when Kafka
    does not answer."""
    admin = KafkaAdmin(config.kafka_bootstrap_servers)
    read = admin.group_offsets(config.speed_layer_group_id)
    if not read:
        return None
    ends = admin.end_offsets([config.kafka_topic_products], committed_only=True)
    return sum(max(0, end - read.get(topic_partition, 0)) for topic_partition, end in ends.items())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.is_set():
        serve_until_failure(stop)


def serve_until_failure(stop: threading.Event) -> None:
    """Connects and serves until `stop` is set; when MongoDB does not answer at the start or Kafka fails
    fatally, logs it and returns after RESTART_DELAY_S (main starts again: it keeps no state of its own)."""
    try:
        speed_layer = SpeedLayer.connect(settings)
    except PyMongoError as error:
        log.warning("MongoDB does not answer (%s); trying again in %.0fs", error, RESTART_DELAY_S)
        stop.wait(RESTART_DELAY_S)
        return
    log.info(
        "serving %s from %s into %s as consumer group %s",
        settings.kafka_topic_products,
        settings.kafka_bootstrap_servers,
        settings.mongo_db,
        settings.speed_layer_group_id,
    )
    try:
        log.info("stopped: %s", speed_layer.run(stop).summary())
    except KafkaException as error:
        log.error("Kafka failed (%s); starting again in %.0fs", error, RESTART_DELAY_S)
        stop.wait(RESTART_DELAY_S)
    finally:
        speed_layer.close()
