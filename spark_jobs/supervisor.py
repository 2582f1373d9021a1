"""Runs the streaming query and tells transient failures from deterministic ones.

- **transient**: Kafka or MongoDB does not answer (probed right after the failure). The query is started
  again from its checkpoint with a growing delay (5 s more per failure, at most 60 s), without a limit.
- **deterministic**: both answer, and either the cause is Spark's Kafka data loss or a changed topic (records
  gone from Kafka, offsets that went back, partitions gone, the topic guard's TopicChanged), or the same batch
  failed with the same cause SAME_FAILURE_LIMIT times in a row. The job stops (exit code 1) with a message
  naming the batch's topics, partitions and offsets (from the checkpoint), the cause and the command that
  resolves it.
- **undetermined**: both answer and the failure is not known to be deterministic yet: restart and see.

The supervisor's state is the `pipeline_status` document `_id: streaming_job_supervisor` in MongoDB (best
effort: MongoDB may be what is away) and the same JSON in `CHECKPOINT_DIR/supervisor.json`.

    python -m spark_jobs.supervisor reset-checkpoint    # what `make reset-checkpoint` runs once the job stopped
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from confluent_kafka import KafkaException
from pymongo.database import Database
from pymongo.errors import PyMongoError
from pyspark.errors import StreamingQueryException

from lakehouse import catalog
from lakehouse.catalog import SUPERVISOR_STATUS_ID
from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.mongo import serving_db
from lakehouse.settings import Settings, settings
from spark_jobs.progress import batch_end_offsets
from spark_jobs.topic_guard import RESET_COMMAND, TopicChanged

if TYPE_CHECKING:
    from spark_jobs.streaming_job import StreamingJob

log = logging.getLogger("spark_jobs.supervisor")

# Failures in a row, each of another kind, while Kafka and MongoDB answer: then the job gives up too.
MAX_RESTARTS = 30
SAME_FAILURE_LIMIT = 3
PROBE_TIMEOUT_S = 5.0
POLL_SECONDS = 5.0
STATUS_FILE = "supervisor.json"
QUERY_FOLDER = "ingest"
# Long enough for the topic guard's messages, which end with the command that fixes the topic.
MAX_CAUSE_CHARS = 4000  # the topic guard's message for two topics, with its command, is ~1,100

Kind = Literal["transient", "undetermined", "deterministic"]
State = Literal["running", "restarting", "stopped"]
Problem = Literal[
    "away", "records_gone", "topic_changed", "topic_guard", "repeated", "restarts_exhausted", "unexplained"
]

START_COMMAND = "make up"
DATA_LOSS_COMMAND = "STREAM_FAIL_ON_DATA_LOSS=false make up"
RESET_AND_START_COMMAND = f"{RESET_COMMAND} && {START_COMMAND}"
FAIL_ON_DATA_LOSS_WARNING = (
    "STREAM_FAIL_ON_DATA_LOSS=false: records gone from Kafka (retention, deleted records) are skipped without "
    "stopping the job. Start the job again without it once the batch that lost them is done."
)

# --- the cause, in one line -------------------------------------------------------------------------------

QUERY_PREFIX = re.compile(r"^\[STREAM_FAILED\] Query \[[^\]]*\] terminated with exception: ")
TRACEBACK = "Traceback (most recent call last):"
PY4J_ERROR = "py4j.protocol.Py4JJavaError"
# "Job aborted due to stage failure: Task 0 in stage 2.0 failed 1 times, most recent failure: Lost task 0.0 in
# stage 2.0 (TID 3) (host executor driver): <the task's exception>": the task's exception is the cause.
STAGE_FAILURE = re.compile(
    r"^(?:org\.apache\.spark\.SparkException: )?Job aborted due to stage failure: .*?most recent failure: "
    r"Lost task .*?\(TID \d+\) \([^)]*\): "
)

# Spark 3.5's messages, Spark 4's error classes and the "Reason:" of its KAFKA_DATA_LOSS messages.
TOPIC_CHANGED_SIGNS = (
    "offset was changed from",
    "are gone. Some data may have been missed",
    "Cannot find earliest offsets",
    "PARTITION_OFFSET_CHANGED",
    "PARTITIONS_DELETED",
    "INITIAL_OFFSET_NOT_FOUND_FOR_PARTITIONS",
    "have been deleted.",
    "Cannot find initial offsets",
)
RECORDS_GONE_SIGNS = (
    "Cannot fetch offset",
    "Cannot fetch records in",
    "COULD_NOT_READ_OFFSET_RANGE",
    "Some data may have been lost",
)
# Spark 4's Kafka source starts every data-loss message with the same line ("Some data may have been lost
# because they are not available in Kafka any more;") and says what was lost lines later, after "Reason:".
KAFKA_DATA_LOSS_START = "not available in Kafka any more;"
KAFKA_DATA_LOSS_REASON = re.compile(r"^Reason: .*?(?=\n\s+at |\nCaused by: |\n\s*\n|\Z)", re.MULTILINE | re.DOTALL)


def one_line(text: str) -> str:
    """`text` with its whitespace collapsed, at most MAX_CAUSE_CHARS characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_CAUSE_CHARS else flat[: MAX_CAUSE_CHARS - 1] + "…"


def failure_cause(error: BaseException | str) -> str:
    """The real cause of a failed query in one line.

    A Python exception raised inside foreachBatch reaches the query as Spark's "An exception was raised by the
    Python Proxy. Return Message: Traceback ...": its last exception line is the cause, or, when that is a
    Py4JJavaError (a Spark action called by the batch failed), the JVM error it carries. A JVM error's cause is
    its first meaningful line, without Spark's "Query [...] terminated" and "Job aborted due to stage failure"
    wrappers (e.g. the Kafka source's "Cannot fetch offset 3 (..., TopicPartition: topic-0).").
    """
    text = QUERY_PREFIX.sub("", str(error).strip())
    if TRACEBACK in text:
        return _python_cause(text.rsplit(TRACEBACK, 1)[1])
    return _jvm_cause(text)


def _python_cause(traceback: str) -> str:
    lines = traceback.splitlines()
    # Frames and their code are indented; the exception line is the first one that is not.
    start = next((index for index, line in enumerate(lines) if line and not line[0].isspace()), None)
    if start is None:
        return one_line(traceback)
    if lines[start].startswith(PY4J_ERROR):
        return _jvm_cause("\n".join(lines[start + 1 :])) or one_line(lines[start])
    return one_line(lines[start])


def _jvm_cause(text: str) -> str:
    for line in text.splitlines():
        meaningful = STAGE_FAILURE.sub("", line.strip().removeprefix(":").strip())
        if meaningful:
            return one_line(meaningful + _kafka_data_loss_reason(meaningful, text))
    return ""


def _kafka_data_loss_reason(first_line: str, text: str) -> str:
    """The "Reason: <what was lost>" of Spark 4's Kafka data-loss message, after a space, when `first_line` is
    that message's first line; else an empty string."""
    reason = KAFKA_DATA_LOSS_REASON.search(text) if KAFKA_DATA_LOSS_START in first_line else None
    return f" {reason.group(0)}" if reason else ""


def known_problem(cause: str) -> Problem | None:
    """What a cause says for certain: Kafka records gone, a topic changed under the checkpoint, or the topic
    guard refusing a topic (its message names the fix); None when the cause alone says nothing certain."""
    if TopicChanged.__name__ in cause:
        return "topic_changed" if RESET_COMMAND in cause or " was deleted" in cause else "topic_guard"
    if any(sign in cause for sign in TOPIC_CHANGED_SIGNS):
        return "topic_changed"
    if any(sign in cause for sign in RECORDS_GONE_SIGNS):
        return "records_gone"
    return None


def classify(cause: str, away: Sequence[str], same_failures: int, failures_in_a_row: int) -> tuple[Kind, Problem]:
    """`away`: the services that did not answer after the failure ("Kafka", "MongoDB"); `same_failures`: how
    many times in a row this batch failed with this cause while they answered (this failure included);
    `failures_in_a_row`: failures while they answered since the query last finished a batch."""
    if away:
        return "transient", "away"
    problem = known_problem(cause)
    if problem is not None:
        return "deterministic", problem
    if same_failures >= SAME_FAILURE_LIMIT:
        return "deterministic", "repeated"
    if failures_in_a_row >= MAX_RESTARTS:
        return "deterministic", "restarts_exhausted"
    return "undetermined", "unexplained"


def comparable(cause: str) -> str:
    """The cause without its numbers: task, stage and object ids and run-specific ids differ between two
    failures of one batch for one reason (the batch, which is compared too, fixes the offsets)."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+", "#", cause)


# --- the failing batch, from the checkpoint ---------------------------------------------------------------


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition in one batch. start None: from the topic's start (first batch);
    end None: the partition is not in the batch's end offsets (gone), or the batch is not planned yet."""

    topic: str
    partition: int
    start: int | None
    end: int | None

    def describe(self) -> str:
        where = f"partition {self.partition}"
        if self.end is None:
            return f"{where} from offset {self.start}"
        if self.start is None:
            return f"{where} offsets from the topic's start to {self.end - 1}"
        if self.end < self.start:
            return f"{where} offsets {self.start} -> {self.end} (went back)"
        return f"{where} offsets {self.start}-{self.end - 1}"


@dataclass(frozen=True)
class FailingBatch:
    """The batch the query was running when it failed; `planned`: its end offsets are in the checkpoint."""

    batch_id: int
    planned: bool
    ranges: tuple[PartitionRange, ...]

    def describe(self) -> str:
        """'batch 1: topic-a partition 0 offsets 3-5, partition 1 offsets 3-5; topic-b partition 0 ...'"""
        shown = [r for r in self.ranges if r.start != r.end or not self.planned]
        by_topic: dict[str, list[str]] = {}
        for partition_range in shown:
            by_topic.setdefault(partition_range.topic, []).append(partition_range.describe())
        where = "; ".join(f"{topic} {', '.join(parts)}" for topic, parts in sorted(by_topic.items()))
        label = f"batch {self.batch_id}" + ("" if self.planned else " (not planned yet)")
        return f"{label}: {where or 'no records'}"


def _batch_ids(folder: Path) -> list[int]:
    return sorted(int(path.name) for path in folder.glob("[0-9]*") if path.name.isdigit())


def read_offsets(query_checkpoint: Path, batch_id: int) -> dict[tuple[str, int], int]:
    """(topic, partition) -> offset at the end of `batch_id` (progress.batch_end_offsets, keyed by pair)."""
    return {
        (topic, int(partition)): offset
        for topic, partitions in batch_end_offsets(query_checkpoint, batch_id).items()
        for partition, offset in partitions.items()
    }


def failing_batch(query_checkpoint: Path) -> FailingBatch | None:
    """The uncommitted batch N (offsets/N-1, or the topics' start, to offsets/N); when every planned batch is
    committed, the next one, not planned yet, from the last end offsets. None: no batch planned ever."""
    planned = _batch_ids(query_checkpoint / "offsets")
    if not planned:
        return None
    last = planned[-1]
    if last in set(_batch_ids(query_checkpoint / "commits")):
        starts = read_offsets(query_checkpoint, last)
        upcoming = (
            PartitionRange(topic, partition, offset, None) for (topic, partition), offset in sorted(starts.items())
        )
        return FailingBatch(last + 1, False, tuple(upcoming))
    ends = read_offsets(query_checkpoint, last)
    starts = read_offsets(query_checkpoint, last - 1) if last - 1 in planned else {}
    keys = sorted(set(starts) | set(ends))
    return FailingBatch(last, True, tuple(PartitionRange(t, p, starts.get((t, p)), ends.get((t, p))) for t, p in keys))


# --- what to say --------------------------------------------------------------------------------------------


def stop_message(problem: Problem, cause: str, batch: FailingBatch | None, repeats: int) -> tuple[str, str]:
    """(the actionable message, the command that resolves it) for a deterministic failure."""
    where = batch.describe() if batch is not None else "no batch planned yet"
    stated = cause.rstrip(". ")  # a cause often ends with its own period
    if problem == "records_gone":
        return (
            f"Records the job has not read are gone from Kafka (retention or deleted records): {where}. "
            f"Cause: {stated}. To go on without these records, start the job once with "
            f"STREAM_FAIL_ON_DATA_LOSS=false (`{DATA_LOSS_COMMAND}`).",
            DATA_LOSS_COMMAND,
        )
    if problem == "topic_changed":
        return (
            f"An input topic was deleted and created again (offsets went back or partitions are gone): {where}. "
            f"Cause: {stated}. Run `{RESET_COMMAND}` and start the job again (`{START_COMMAND}`): it re-reads "
            "every topic from its beginning; record versions make records read again change nothing.",
            RESET_AND_START_COMMAND,
        )
    what = {
        "repeated": f"The same batch failed the same way {repeats} times in a row while Kafka and MongoDB answer",
        "restarts_exhausted": f"The query failed {MAX_RESTARTS} times in a row without finishing a batch",
    }.get(problem, "An input topic is refused")
    return (
        f"{what}: {where}. Cause: {stated}. Fix the cause, then start the job again (`{START_COMMAND}`); "
        "it replays this batch.",
        START_COMMAND,
    )


def waiting_message(away: Sequence[str], cause: str) -> str:
    return f"waiting for {' and '.join(away)}: {cause}"


def startup_warnings(config: Settings) -> tuple[str, ...]:
    return () if config.stream_fail_on_data_loss else (FAIL_ON_DATA_LOSS_WARNING,)


# --- the state, in MongoDB and beside the checkpoint -------------------------------------------------------


@dataclass(frozen=True)
class Status:
    state: State
    kind: Kind | None = None
    cause: str = ""
    message: str = ""
    command: str = ""
    batch: FailingBatch | None = None
    restarts: int = 0
    warnings: tuple[str, ...] = ()

    def document(self, now: datetime) -> dict[str, Any]:
        """The `pipeline_status` document: state, kind, cause, message, command, batch_id, ranges (topic,
        partition, start, end: offsets [start, end), null when unknown), restarts, warnings, updated_at."""
        return {
            "_id": SUPERVISOR_STATUS_ID,
            "state": self.state,
            "kind": self.kind,
            "cause": self.cause,
            "message": self.message,
            "command": self.command,
            "batch_id": self.batch.batch_id if self.batch else None,
            "ranges": [asdict(r) for r in self.batch.ranges] if self.batch else [],
            "restarts": self.restarts,
            "warnings": list(self.warnings),
            "updated_at": now,
        }


def status_file(config: Settings) -> Path:
    """Beside the query's checkpoint folder, not in it: a reset moves that folder away."""
    return config.checkpoint_dir / STATUS_FILE


def read_status(config: Settings) -> dict[str, Any] | None:
    """The supervisor's last document as the job wrote it to its file (updated_at as ISO text); None: none."""
    try:
        return json.loads(status_file(config).read_text())
    except FileNotFoundError:
        return None


def status_lines(document: dict[str, Any]) -> list[str]:
    """What `make status` prints: nothing while the job runs normally."""
    warnings = document.get("warnings") or []
    if document.get("state") == "running" and not warnings:
        return []
    kind = f" ({document['kind']})" if document.get("kind") else ""
    lines = [f"job supervisor: {document.get('state')}{kind} since {document.get('updated_at')}"]
    lines += [f"  {document['message']}"] if document.get("message") else []
    lines += [f"  command: {document['command']}"] if document.get("command") else []
    return lines + [f"  WARNING: {warning}" for warning in warnings]


class StatusBoard:
    """Publishes the supervisor's state to its file and, best effort, to MongoDB."""

    def __init__(self, file: Path, db: Database | None) -> None:
        self.file = file
        self.db = db

    def publish(self, status: Status) -> dict[str, Any]:
        document = status.document(datetime.now(UTC))
        self.file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.file.with_suffix(".tmp")
        partial.write_text(json.dumps(document, default=_iso, indent=1))
        partial.replace(self.file)
        if self.db is not None:
            try:
                status = self.db[catalog.PIPELINE_STATUS.name]
                status.replace_one({"_id": SUPERVISOR_STATUS_ID}, document, upsert=True)
            except PyMongoError as error:
                log.warning("supervisor state not written to MongoDB (%s), only to %s", type(error).__name__, self.file)
        return document


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


# --- probes -----------------------------------------------------------------------------------------------


class ServiceProbe:
    """Does Kafka answer, does MongoDB answer? Each probe is bounded by about PROBE_TIMEOUT_S seconds."""

    def __init__(self, config: Settings, db: Database) -> None:
        self.kafka = KafkaAdmin(config.kafka_bootstrap_servers, timeout_s=PROBE_TIMEOUT_S)
        self.db = db

    def unreachable(self) -> list[str]:
        away = []
        try:
            self.kafka.topic_names()
        except KafkaException:
            away.append("Kafka")
        try:
            self.db.command("ping")
        except PyMongoError:
            away.append("MongoDB")
        return away


# --- the loop ---------------------------------------------------------------------------------------------


@dataclass
class FailureHistory:
    """Failures since the query last finished a batch, and repeats of one (batch, cause)."""

    in_a_row: int = 0
    answered_in_a_row: int = 0
    same: int = 0
    last: tuple[int | None, str] | None = field(default=None, repr=False)

    def record(self, batch_id: int | None, cause: str, progressed: bool, transient: bool) -> None:
        if progressed:
            self.in_a_row = self.answered_in_a_row = 0
        self.in_a_row += 1
        if transient:
            return
        self.answered_in_a_row += 1
        key = (batch_id, comparable(cause))
        self.same = self.same + 1 if key == self.last else 1
        self.last = key

    @property
    def delay_seconds(self) -> int:
        return min(5 * self.in_a_row, 60)


@dataclass(frozen=True)
class Failure:
    cause: str
    progressed: bool


class Supervisor:
    """Runs a StreamingJob's query until it ends (available-now) or fails deterministically."""

    def __init__(self, job: StreamingJob, board: StatusBoard, probe: ServiceProbe) -> None:
        self.job = job
        self.board = board
        self.probe = probe
        self.query_checkpoint = job.query_checkpoint
        self.warnings = startup_warnings(job.config)
        self.history = FailureHistory()

    @classmethod
    def for_job(cls, job: StreamingJob) -> Supervisor:
        db = serving_db(
            job.config, server_selection_timeout_ms=3000, socket_timeout_ms=10_000, app_name="amazon-lakehouse-job"
        )
        return cls(job, StatusBoard(status_file(job.config), db), ServiceProbe(job.config, db))

    def run(self, available_now: bool) -> None:
        """Returns when an available-now run is done; raises SystemExit(1) on a deterministic failure."""
        for warning in self.warnings:
            log.warning("%s", warning)
        self.board.publish(Status("running", warnings=self.warnings))
        restarted = False
        while (failure := self._attempt(available_now, restarted)) is not None:
            self._handle(failure)
            restarted = True

    def _attempt(self, available_now: bool, restarted: bool) -> Failure | None:
        try:
            query = self.job.start(available_now=available_now)
        except (TopicChanged, KafkaException) as error:  # the topic guard, before the query starts
            return Failure(one_line(f"{type(error).__name__}: {error}"), progressed=False)
        try:
            while not query.awaitTermination(POLL_SECONDS):
                if restarted and query.lastProgress is not None:
                    self.board.publish(Status("running", warnings=self.warnings))
                    restarted = False
        except StreamingQueryException as error:
            return Failure(failure_cause(error), progressed=query.lastProgress is not None)
        return None

    def _handle(self, failure: Failure) -> None:
        away = self.probe.unreachable()
        batch = failing_batch(self.query_checkpoint)
        history = self.history
        history.record(batch.batch_id if batch else None, failure.cause, failure.progressed, bool(away))
        kind, problem = classify(failure.cause, away, history.same, history.answered_in_a_row)
        if kind == "deterministic":
            self._stop(kind, problem, failure.cause, batch)
        delay = history.delay_seconds
        message = waiting_message(away, failure.cause) if away else f"restarting after: {failure.cause}"
        log.error(
            "query failed (%s): %s; %srestarting from the checkpoint in %ds (%d in a row)",
            kind,
            failure.cause,
            f"waiting for {' and '.join(away)}, " if away else "",
            delay,
            history.in_a_row,
        )
        status = Status("restarting", kind, failure.cause, message, "", batch, history.in_a_row, self.warnings)
        self.board.publish(status)
        time.sleep(delay)

    def _stop(self, kind: Kind, problem: Problem, cause: str, batch: FailingBatch | None) -> NoReturn:
        message, command = stop_message(problem, cause, batch, self.history.same)
        log.error("query failed (%s): %s; the job stops", kind, cause)
        log.error("stopped: %s", message)
        restarts = self.history.in_a_row - 1
        self.board.publish(Status("stopped", kind, cause, message, command, batch, restarts, self.warnings))
        raise SystemExit(1)


def run_supervised(job: StreamingJob, available_now: bool) -> None:
    """Run the job's query; restart it from the checkpoint after a transient failure, stop the job (SystemExit
    with code 1) after a deterministic one. The unfinished micro-batch is replayed, which every write tolerates."""
    Supervisor.for_job(job).run(available_now)


# --- make reset-checkpoint ----------------------------------------------------------------------------------


def reset_checkpoint(checkpoint_dir: Path, now: datetime) -> Path | None:
    """Move `checkpoint_dir/ingest` aside to `ingest.reset-<UTC timestamp>` (never deleted); None: none there."""
    query = checkpoint_dir / QUERY_FOLDER
    if not query.exists():
        return None
    target = checkpoint_dir / f"{QUERY_FOLDER}.reset-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    query.rename(target)
    return target


def main(argv: Iterable[str] | None = None, config: Settings = settings) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs.supervisor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "reset-checkpoint", help="move the job's checkpoint aside (stop the job first: `make reset-checkpoint`)"
    )
    parser.parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    moved = reset_checkpoint(config.checkpoint_dir, datetime.now(UTC))
    if moved is None:
        print(f"no checkpoint at {config.query_checkpoint_dir}: nothing to reset")
        return 0
    message = (
        f"The job's checkpoint was moved to {moved}. Start the job again (`{START_COMMAND}`): it re-reads every "
        "topic from its beginning; record versions make records read again change nothing."
    )
    board = StatusBoard(status_file(config), serving_db(config, server_selection_timeout_ms=3000))
    board.publish(Status("stopped", message=message, command=START_COMMAND))
    print(message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
