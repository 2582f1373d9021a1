"""Producing for the API: every request's records are one Kafka transaction, committed before the answer.

- A 2xx means the transaction committed: every record is acknowledged by the broker (acks=all) and
  visible to read_committed readers (the streaming job). A failed request aborts its transaction, so
  none of its records ever reaches those readers, and the client can safely send it again.
- A single record without an Idempotency-Key skips the transaction (one record is atomic anyway): it is
  produced by a shared idempotent producer and answered on its delivery report, so concurrent single
  POSTs share broker round trips instead of paying a commit each.
- With an Idempotency-Key, the same transaction also writes the key and the answer to a compacted
  topic. A repeated key gets the stored answer and produces nothing, so a batch retried after a lost
  answer reaches the readers once, also when it reaches another API process (see IdempotencyLog).
- Any number of API processes can run side by side (uvicorn --workers, replicas): each has its own
  transactional ids (process_transactional_ids), so none fences another.
- The producers are librdkafka's (confluent-kafka): lz4, idempotent, in a pool because a producer holds
  one open transaction at a time. kafka-python topped out near 16k records/s here (bench/ingest.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from lakehouse.committed import CommittedReader
from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.settings import Settings

log = logging.getLogger(__name__)

KeyedValue = tuple[bytes, bytes]


class DeliveryError(RuntimeError):
    """Kafka did not commit the request's records in time; none of them is visible to readers."""


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before for a different request body."""


def encode_value(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Receipt:
    """What the API answered for a committed request; stored under its Idempotency-Key."""

    accepted: int
    topic: str
    fingerprint: str

    def encode(self) -> bytes:
        return json.dumps({"accepted": self.accepted, "topic": self.topic, "fingerprint": self.fingerprint}).encode()

    @classmethod
    def decode(cls, value: bytes) -> Receipt:
        return cls(**json.loads(value))


def producer_config(settings: Settings, transactional_id: str | None) -> dict[str, Any]:
    timeout_ms = int(settings.kafka_delivery_timeout_seconds * 1000)
    transactional = {"transactional.id": transactional_id} if transactional_id else {}
    return transactional | {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
        "message.timeout.ms": timeout_ms,
        "transaction.timeout.ms": 60_000,
        "socket.connection.setup.timeout.ms": timeout_ms,
    }


def process_transactional_ids(prefix: str, count: int) -> list[str]:
    """`count` transactional ids no other process uses: `<prefix>-<pid>-<random>-<index>`.

    Several API processes with the same settings (uvicorn --workers, replicas sharing KAFKA_TRANSACTIONAL_ID)
    would otherwise fence each other's producers. Since KIP-447 (Kafka 2.5) a transactional id no longer
    needs to be stable per input partition, so a fresh one per process is safe. The trade-off: a process
    started after a crash does not fence the dead one's open transaction; the broker aborts it after
    `transaction.timeout.ms` (60 s), and until then read_committed readers stop at it: the streaming job
    waits, and IdempotencyLog does not see keys committed after it.
    Each id stays in the broker's transaction state until `transactional.id.expiration.ms` (7 days) idle.
    """
    process = f"{os.getpid()}-{secrets.token_hex(3)}"
    return [f"{prefix}-{process}-{index}" for index in range(count)]


class IdempotencyLog:
    """The Idempotency-Keys every API process committed, read from their compacted topic (read_committed).

    Any number of API processes write the topic, so a key not known here may have been committed by
    another one since this process last read it: a miss first reads on, from the last position read up to
    the topic's current committed end (its last stable offset), and only then answers "not seen". The
    first miss reads the whole topic; its consumer stays open, so later misses fetch only what is new
    (about 10-20 ms per keyed request on the local broker).

    What remains: two requests with the same key in flight at the same moment on two processes both miss
    and both commit (Kafka has no lock across processes); the records then are twice in the topic and in
    bronze, and the job's versioned upserts make the second copy change nothing in silver and MongoDB.
    Within one process the RecordProducer's key locks prevent it.

    `get` raises DeliveryError when the topic cannot be read within KAFKA_DELIVERY_TIMEOUT_SECONDS.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._receipts: dict[str, Receipt] = {}
        self._admin = KafkaAdmin(settings.kafka_bootstrap_servers, settings.kafka_delivery_timeout_seconds)
        self._reader: CommittedReader | None = None
        self._lock = threading.Lock()

    def get(self, key: str) -> Receipt | None:
        with self._lock:
            if key not in self._receipts:
                self._catch_up()
            return self._receipts.get(key)

    def remember(self, key: str, receipt: Receipt) -> None:
        with self._lock:
            self._receipts[key] = receipt

    def close(self) -> None:
        with self._lock:
            self._drop_reader()

    def _catch_up(self) -> None:
        """Read what was committed since the last read. A transaction still open (of unknown outcome after
        an UncertainOutcome, or another process's) is past the last stable offset: read once it ends."""
        topic, timeout_s = self.settings.kafka_topic_idempotency, self.settings.kafka_delivery_timeout_seconds
        try:
            ends = self._admin.end_offsets([topic], committed_only=True)
            for message in self._following_reader().read_to(ends, timeout_s):
                self._receipts[message.key().decode()] = Receipt.decode(message.value())
        except (KafkaException, TimeoutError) as error:
            self._drop_reader()  # the next miss reads the topic again from its beginning
            raise DeliveryError(f"cannot read the idempotency keys from {topic}: {error}") from error

    def _following_reader(self) -> CommittedReader:
        if self._reader is None:
            group = f"{self.settings.transactional_id_prefix}-idempotency"
            self._reader = CommittedReader(self.settings.kafka_bootstrap_servers, group)
        return self._reader

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class TransactionalProducer:
    """One librdkafka producer with its own transactional.id; re-created after an unrecoverable error."""

    def __init__(self, settings: Settings, transactional_id: str) -> None:
        self.settings = settings
        self.transactional_id = transactional_id
        self._producer: Producer | None = None

    def commit(self, records: Sequence[tuple[str, KeyedValue]], deadline: float) -> None:
        """Produce (topic, (key, value)) records in one transaction; raise DeliveryError unless committed."""
        producer = self._ready(deadline)
        try:
            producer.begin_transaction()
            for topic, (key, value) in records:
                _produce(producer, topic, key, value, deadline)
            producer.commit_transaction(_remaining(deadline))
        except (KafkaException, BufferError) as error:
            self._abort(producer, deadline)
            raise DeliveryError(f"Kafka did not commit {len(records)} record(s): {error}") from error

    def _ready(self, deadline: float) -> Producer:
        if self._producer is None:
            producer = Producer(producer_config(self.settings, self.transactional_id))
            try:
                # After an UncertainOutcome: fences this slot's earlier producer, ending its open transaction.
                producer.init_transactions(_remaining(deadline))
            except KafkaException as error:
                raise DeliveryError(f"Kafka transactions unavailable: {error}") from error
            self._producer = producer
        return self._producer

    def _abort(self, producer: Producer, deadline: float) -> None:
        try:
            producer.abort_transaction(max(_remaining(deadline), 1.0))
        except KafkaException as error:
            log.warning("%s: abort failed (%s); the producer will be re-created", self.transactional_id, error)
            self._producer = None
            raise UncertainOutcome(self.transactional_id) from error

    def close(self, timeout_s: float) -> None:
        if self._producer is not None:
            self._producer.flush(timeout_s)
            self._producer = None  # librdkafka's threads stop when the handle is freed


class DeliveryReports:
    """The shared idempotent producer for single records, with a thread that serves its delivery reports."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer(producer_config(settings, None))
        self._stopped = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="delivery-reports", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopped.is_set():
            try:
                self._producer.poll(0.1)
            except Exception:  # a failing report must not stop the reports of every later request
                log.exception("delivery report failed")

    def submit(self, topic: str, key: bytes, value: bytes) -> Future[None]:
        """Produce one record; the future completes on the broker's acknowledgement."""
        delivered: Future[None] = Future()

        def report(error: KafkaError | None, _message: Message) -> None:
            try:
                if error is None:
                    delivered.set_result(None)
                else:
                    delivered.set_exception(KafkaException(error))
            except InvalidStateError:  # the request gave up waiting (timed out) and was answered 503
                pass

        try:
            self._producer.produce(topic, value=value, key=key, on_delivery=report)
        except (KafkaException, BufferError) as error:
            delivered.set_exception(error)
        return delivered

    def close(self, timeout_s: float) -> None:
        if self._stopped.is_set():
            return
        self._producer.flush(timeout_s)
        self._stopped.set()
        self._poller.join()


class UncertainOutcome(DeliveryError):
    """Neither commit nor abort was confirmed: the transaction may still commit when its id is re-initialized."""


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _produce(producer: Producer, topic: str, key: bytes, value: bytes, deadline: float) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:  # the local queue is full: let librdkafka send, then try again
            if time.monotonic() > deadline:
                raise
            producer.poll(0.01)


class RecordProducer:
    """The process's producers and its Idempotency-Key log; created at start-up, flushed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = settings.kafka_delivery_timeout_seconds
        self.idempotency = IdempotencyLog(settings)
        self._pool: queue.Queue[TransactionalProducer] = queue.Queue()
        for transactional_id in process_transactional_ids(settings.transactional_id_prefix, settings.api_producer_pool):
            self._pool.put(TransactionalProducer(settings, transactional_id))
        self._key_locks = [threading.Lock() for _ in range(64)]
        self._single = DeliveryReports(settings)

    def send_records(
        self,
        topic: str,
        keyed_values: Sequence[KeyedValue],
        idempotency_key: str | None = None,
        fingerprint: str = "",
    ) -> tuple[Receipt, bool]:
        """Commit the records; returns the receipt and whether it is a replay of an earlier commit."""
        if idempotency_key is None:
            self._commit([(topic, kv) for kv in keyed_values])
            return Receipt(len(keyed_values), topic, fingerprint), False
        with self._key_locks[hash(idempotency_key) % len(self._key_locks)]:
            earlier = self.idempotency.get(idempotency_key)
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyConflict(f"Idempotency-Key {idempotency_key!r} was used for another body")
                return earlier, True
            receipt = Receipt(len(keyed_values), topic, fingerprint)
            marker = (self.settings.kafka_topic_idempotency, (idempotency_key.encode(), receipt.encode()))
            self._commit([*((topic, kv) for kv in keyed_values), marker])
            self.idempotency.remember(idempotency_key, receipt)
            return receipt, False

    async def send_one(self, topic: str, keyed_value: KeyedValue) -> Receipt:
        """One record without a transaction, awaited on the event loop: concurrent calls share round trips."""
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._single.submit(topic, *keyed_value)), self.timeout_s)
        except (KafkaException, BufferError, TimeoutError) as error:
            raise DeliveryError(f"Kafka did not acknowledge the record: {error!r}") from error
        return Receipt(1, topic, "")

    def _commit(self, records: list[tuple[str, KeyedValue]]) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            producer = self._pool.get(timeout=self.timeout_s)
        except queue.Empty:
            raise DeliveryError(f"no producer free within {self.timeout_s:.0f}s") from None
        try:
            producer.commit(records, deadline)
        finally:
            self._pool.put(producer)

    def close(self) -> None:
        """Takes each producer from the pool in turn (waiting for a request using it) and flushes it."""
        self._single.close(self.timeout_s)
        self.idempotency.close()
        for _ in range(self.settings.api_producer_pool):
            producer = self._pool.get()
            producer.close(self.timeout_s)
            self._pool.put(producer)
