"""A single-node Apache Kafka broker in KRaft mode, run from the Maven Central jars in build/jars/kafka."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import NewTopic

from lakehouse.kafka_admin import LOG_APPEND_TIME, KafkaAdmin, KafkaAdminError
from lakehouse.net import host_port
from lakehouse.settings import PROJECT_ROOT, Settings
from stack.processes import ServiceProcess, wait_until

log = logging.getLogger(__name__)

KAFKA_JARS = PROJECT_ROOT / "build" / "jars" / "kafka"
KAFKA_HEAP = "-Xmx512m"

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.controller=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.state.change.logger=WARN
"""


def java_command(main_class: str, *args: str) -> list[str]:
    return ["java", KAFKA_HEAP, "-cp", f"{KAFKA_JARS}/*", main_class, *args]


def server_properties(settings: Settings, data_dir: Path) -> str:
    host, port = host_port(settings.kafka_bootstrap_servers.split(",")[0])
    controller = f"{host}:{port + 1}"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{controller}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{controller}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir}",
            # Topics are created by the project with explicit partitions, never by a typo in a producer.
            "auto.create.topics.enable=false",
            f"num.partitions={settings.kafka_topic_partitions}",
            # The broker stamps every record, also in topics an operator creates by hand: the job's record
            # versions are that time (spark_jobs/transforms.py record_version).
            f"log.message.timestamp.type={LOG_APPEND_TIME}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )


# Keys are kept for a week: longer than any client retries a batch.
IDEMPOTENCY_TOPIC_CONFIG = {"cleanup.policy": "compact,delete", "retention.ms": str(7 * 24 * 3600 * 1000)}
INGEST_TOPIC_CONFIG = {"message.timestamp.type": LOG_APPEND_TIME}


def project_topics(settings: Settings) -> list[NewTopic]:
    """Ingest topics, the job's output topic, and the API's compacted Idempotency-Key log."""
    partitioned = (settings.kafka_topic_products, settings.kafka_topic_categories, settings.kafka_topic_processed)
    replication = settings.kafka_replication_factor
    return [
        NewTopic(name, settings.kafka_topic_partitions, replication, config=INGEST_TOPIC_CONFIG) for name in partitioned
    ] + [NewTopic(settings.kafka_topic_idempotency, 1, replication, config=IDEMPOTENCY_TOPIC_CONFIG)]


class KafkaBroker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.runtime_dir / "kafka"
        self.data_dir = self.home / "data"
        self.process = ServiceProcess("kafka", settings.runtime_dir)

    def _write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j.properties").write_text(LOG4J_PROPERTIES)
        config = self.home / "server.properties"
        config.write_text(server_properties(self.settings, self.data_dir))
        return config

    def _format_storage(self, config: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        subprocess.run(
            # `--cluster-id=` form: a random id may start with "-", which the option parser would take for a flag.
            java_command("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)),
            check=True,
            capture_output=True,
        )

    def start(self, timeout: float = 90.0) -> None:
        if not self.process.is_running() and self.ready():
            log.info("a Kafka broker already answers at %s; using it", self.settings.kafka_bootstrap_servers)
            self.create_topics()
            return
        if not KAFKA_JARS.is_dir():
            raise RuntimeError(f"Kafka jars missing in {KAFKA_JARS}: run `make setup`")
        config = self._write_config()
        self._format_storage(config)
        command = java_command("kafka.Kafka", str(config))
        command.insert(1, f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}")
        self.process.start(command)
        if not wait_until(self.ready, timeout, interval=0.5):
            raise RuntimeError(f"Kafka did not become ready in {timeout:.0f}s:\n{self.process.log_tail()}")
        self.create_topics()

    def ready(self) -> bool:
        """The broker answers a metadata request within 3 s."""
        try:
            KafkaAdmin(self.settings.kafka_bootstrap_servers, timeout_s=3.0).topic_names()
        except KafkaAdminError:
            return False
        return True

    def create_topics(self) -> None:
        """Create the project's topics that do not exist yet, and stamp the ingest topics with the broker's
        time (topics created by an earlier version used CreateTime); raises KafkaAdminError naming servers
        and topics."""
        admin = KafkaAdmin(self.settings.kafka_bootstrap_servers)
        created = admin.create_topics(project_topics(self.settings))
        if created:
            log.info("created topics %s", ", ".join(created))
        facts = admin.topic_facts(self.settings.kafka_topics)
        producer_stamped = [topic for topic, fact in facts.items() if fact.timestamp_type != LOG_APPEND_TIME]
        if producer_stamped:
            admin.set_topic_config(producer_stamped, "message.timestamp.type", LOG_APPEND_TIME)
            log.warning("set message.timestamp.type=%s on %s", LOG_APPEND_TIME, ", ".join(producer_stamped))

    def stop(self) -> bool:
        return self.process.stop(timeout=60)
