"""Apache Kafka in KRaft mode, one node or a cluster of them, run from the Maven Central jars in build/jars/kafka."""

from __future__ import annotations

import base64
import logging
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import NewTopic

from lakehouse.kafka_admin import LOG_APPEND_TIME, KafkaAdmin, KafkaAdminError, TopicFacts
from lakehouse.net import host_port
from lakehouse.settings import PROJECT_ROOT, Settings
from stack.processes import ServiceProcess, stop_together, wait_until

log = logging.getLogger(__name__)

KAFKA_JARS = PROJECT_ROOT / "build" / "jars" / "kafka"
# The serial collector: a node's live heap is small here, and G1's own structures cost about 60 MiB of resident
# memory at a 512 MiB heap (Native Memory Tracking's "GC" line on the cluster's executors), times three nodes
# in cluster mode.
KAFKA_JVM_OPTIONS = ("-Xmx512m", "-XX:+UseSerialGC")

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
    return ["java", *KAFKA_JVM_OPTIONS, "-cp", f"{KAFKA_JARS}/*", main_class, *args]


def node_addresses(settings: Settings) -> list[tuple[str, int]]:
    """(host, broker port) of each node, in KAFKA_BOOTSTRAP_SERVERS's order: node n is the n-th address and
    its controller listens on the port after its broker's."""
    return [host_port(server) for server in settings.kafka_bootstrap_servers.split(",") if server.strip()]


def quorum_voters(settings: Settings) -> str:
    """`controller.quorum.voters`: every node of KAFKA_BOOTSTRAP_SERVERS, its controller on the next port."""
    nodes = node_addresses(settings)
    return ",".join(f"{number}@{node_host}:{node_port + 1}" for number, (node_host, node_port) in enumerate(nodes, 1))


def server_properties(settings: Settings, data_dir: Path, node_id: int = 1) -> str:
    """server.properties of node `node_id` (1-based) of a combined broker+controller cluster with one voter
    per address of KAFKA_BOOTSTRAP_SERVERS; raises IndexError for a node id without an address."""
    host, port = node_addresses(settings)[node_id - 1]
    voters = quorum_voters(settings)
    replication = settings.kafka_replication_factor
    min_isr = settings.kafka_min_insync_replicas
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{port + 1}",
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
            f"default.replication.factor={replication}",
            f"min.insync.replicas={min_isr}",
            f"offsets.topic.replication.factor={replication}",
            f"transaction.state.log.replication.factor={replication}",
            f"transaction.state.log.min.isr={min_isr}",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )


# Keys are kept for a week: longer than any client retries a batch.
IDEMPOTENCY_TOPIC_CONFIG = {"cleanup.policy": "compact,delete", "retention.ms": str(7 * 24 * 3600 * 1000)}
INGEST_TOPIC_CONFIG = {"message.timestamp.type": LOG_APPEND_TIME}


def project_topics(settings: Settings) -> list[NewTopic]:
    """Ingest topics, the job's output topic, and the API's compacted Idempotency-Key log; each on
    KAFKA_REPLICATION_FACTOR brokers with KAFKA_MIN_INSYNC_REPLICAS of them acknowledging a write."""
    partitioned = (settings.kafka_topic_products, settings.kafka_topic_categories, settings.kafka_topic_processed)
    replication = settings.kafka_replication_factor
    durability = {"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
    return [
        NewTopic(name, settings.kafka_topic_partitions, replication, config=INGEST_TOPIC_CONFIG | durability)
        for name in partitioned
    ] + [NewTopic(settings.kafka_topic_idempotency, 1, replication, config=IDEMPOTENCY_TOPIC_CONFIG | durability)]


def described(admin: KafkaAdmin, topics: tuple[str, ...], timeout: float = 30.0) -> dict[str, TopicFacts]:
    """admin.topic_facts(topics), asked again for up to `timeout` seconds while a broker does not know a topic
    yet: on a cluster a topic just created reaches the other brokers' metadata a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.topic_facts(topics)
        except KafkaAdminError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 characters of URL-safe base64)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def read_property(path: Path, key: str) -> str | None:
    """The value of `key` in a Java properties file of `key=value` lines; None without the file or the key."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    return next((line.split("=", 1)[1] for line in lines if line.startswith(f"{key}=")), None)


class KafkaNode:
    """One broker+controller process: node 1's files in `<runtime>/kafka` and its pid as `kafka` (the
    single-node layout), node n's in `<runtime>/kafka-<n>` and `kafka-<n>`."""

    def __init__(self, settings: Settings, node_id: int = 1) -> None:
        self.settings = settings
        self.node_id = node_id
        self.name = "kafka" if node_id == 1 else f"kafka-{node_id}"
        self.home = settings.runtime_dir / self.name
        self.data_dir = self.home / "data"
        self.process = ServiceProcess(self.name, settings.runtime_dir)

    @property
    def address(self) -> str:
        host, port = node_addresses(self.settings)[self.node_id - 1]
        return f"{host}:{port}"

    def formatted_cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with, or None before its first start."""
        return read_property(self.data_dir / "meta.properties", "cluster.id")

    def formatted_voters(self) -> str | None:
        """The quorum this node's storage was last started in (its server.properties), None before its first
        start. A KRaft node started with static voters cannot join another voter set."""
        if self.formatted_cluster_id() is None:
            return None
        return read_property(self.home / "server.properties", "controller.quorum.voters")

    def _write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j.properties").write_text(LOG4J_PROPERTIES)
        config = self.home / "server.properties"
        config.write_text(server_properties(self.settings, self.data_dir, self.node_id))
        return config

    def _format_storage(self, config: Path, cluster_id: str) -> None:
        if self.formatted_cluster_id() is not None:
            return
        subprocess.run(
            # `--cluster-id=` form: a random id may start with "-", which the option parser would take for a flag.
            java_command("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)),
            check=True,
            capture_output=True,
        )

    def launch(self, cluster_id: str) -> None:
        """Write the config, format the storage on first start with `cluster_id`, start the process (no wait)."""
        config = self._write_config()
        self._format_storage(config, cluster_id)
        command = java_command("kafka.Kafka", str(config))
        command.insert(1, f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}")
        self.process.start(command)


class KafkaBroker:
    """The Kafka of these settings: one KRaft node per address of KAFKA_BOOTSTRAP_SERVERS (one by default;
    three in cluster mode), all sharing one cluster id and a controller quorum of every node."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes = [KafkaNode(settings, number) for number in range(1, len(node_addresses(settings)) + 1)]
        self.home = self.nodes[0].home
        self.data_dir = self.nodes[0].data_dir
        self.process = self.nodes[0].process

    def cluster_id(self) -> str:
        """The id a node was formatted with (all share it), else a new one."""
        return next((found for node in self.nodes if (found := node.formatted_cluster_id())), None) or new_cluster_id()

    def start(self, timeout: float = 90.0) -> None:
        """Start every node not running, wait until all are brokers of the cluster, create the topics; raises
        RuntimeError with the first node's log when that takes over `timeout` seconds."""
        if not any(node.process.is_running() for node in self.nodes) and self.ready():
            log.info("a Kafka broker already answers at %s; using it", self.settings.kafka_bootstrap_servers)
            self.create_topics()
            return
        if not KAFKA_JARS.is_dir():
            raise RuntimeError(f"Kafka jars missing in {KAFKA_JARS}: run `make setup`")
        self.check_same_cluster()
        cluster_id = self.cluster_id()
        for node in self.nodes:
            node.launch(cluster_id)
        if not wait_until(self.ready, timeout, interval=0.5):
            tails = "\n".join(f"{node.name}:\n{node.process.log_tail(15)}" for node in self.nodes)
            raise RuntimeError(f"Kafka did not become ready in {timeout:.0f}s:\n{tails}")
        self.create_topics()

    def check_same_cluster(self) -> None:
        """Raises RuntimeError, naming the folders, when a node's storage belongs to another Kafka than the one
        these settings describe: another quorum (`make run` and `make run-cluster` on one runtime folder share
        node 1's folder) or another cluster id. Starting it anyway would split the quorum or strand the
        topics' replicas; Kafka itself does not refuse it."""
        voters = quorum_voters(self.settings)
        formatted = {node.home: (node.formatted_cluster_id(), node.formatted_voters()) for node in self.nodes}
        other_quorum = [str(home) for home, (_, found) in formatted.items() if found not in (None, voters)]
        cluster_ids = {cluster_id for cluster_id, _ in formatted.values() if cluster_id is not None}
        if other_quorum or len(cluster_ids) > 1:
            folders = ", ".join(other_quorum or map(str, formatted))
            raise RuntimeError(
                f"{folders} holds a Kafka of another shape than {self.settings.kafka_bootstrap_servers} "
                f"(quorum {voters}, cluster ids {sorted(cluster_ids)}): it was started by the other mode "
                "(`make run` versus `make run-cluster`) or another KAFKA_BOOTSTRAP_SERVERS. Start it the way it "
                "was started, or run `make down` and delete the runtime folder's kafka* folders to begin anew."
            )

    def ready(self) -> bool:
        """Every node answers as a broker of the cluster (one metadata request, within 3 s)."""
        try:
            brokers = KafkaAdmin(self.settings.kafka_bootstrap_servers, timeout_s=3.0).broker_ids()
        except KafkaAdminError:
            return False
        return len(brokers) >= len(self.nodes)

    def create_topics(self) -> None:
        """Create the project's topics that do not exist yet, and stamp the ingest topics with the broker's
        time (topics created by an earlier version used CreateTime); raises KafkaAdminError naming servers
        and topics."""
        admin = KafkaAdmin(self.settings.kafka_bootstrap_servers)
        created = admin.create_topics(project_topics(self.settings))
        if created:
            log.info("created topics %s", ", ".join(created))
        facts = described(admin, self.settings.kafka_topics)
        producer_stamped = [topic for topic, fact in facts.items() if fact.timestamp_type != LOG_APPEND_TIME]
        if producer_stamped:
            admin.set_topic_config(producer_stamped, "message.timestamp.type", LOG_APPEND_TIME)
            log.warning("set message.timestamp.type=%s on %s", LOG_APPEND_TIME, ", ".join(producer_stamped))

    def stop(self) -> bool:
        """Stop every node at once; True when any was running."""
        return bool(stop_together([node.process for node in self.nodes]))
