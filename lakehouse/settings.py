"""The only place that reads the environment.

Every component imports `settings` from here. Each endpoint has a local default (the embedded stack
started by `make run`) and is overridden by an environment variable of the same name in docker-compose
or on a real cluster, e.g. KAFKA_BOOTSTRAP_SERVERS=broker1:9092,broker2:9092.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_API_KEY = "changethis"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: str = Field("local", description="'local' (the embedded stack) or anything else")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_products: str = "ingest-product"
    kafka_topic_categories: str = "ingest-category"
    kafka_topic_processed: str = "processed-product"
    # Compacted: the Idempotency-Key of every batch the API committed, with its response.
    kafka_topic_idempotency: str = "ingest-idempotency"
    kafka_topic_partitions: int = Field(3, gt=0)
    kafka_replication_factor: int = Field(1, gt=0)
    # Replicas that must have a record before the broker acknowledges it (acks=all): with 3 replicas and 2,
    # one broker may be down and every acknowledged record is still on two.
    kafka_min_insync_replicas: int = Field(1, gt=0)
    kafka_delivery_timeout_seconds: float = Field(10.0, gt=0)
    # The prefix of the API's transactional ids; empty means "api-<host>-<port>". Each API process adds its
    # pid and a random part, so processes sharing it never fence each other (api_ingest/producer.py).
    kafka_transactional_id: str = ""
    api_producer_pool: int = Field(4, gt=0)

    mongo_uri: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = "amazon"
    # The MongoDB-wire server the local stack starts when nothing answers at MONGO_URI (stack/mongo.py). The
    # other candidates of bench/mongo_servers.py are not offered: each fails a query or index the job needs.
    mongo_server: Literal["secantus", "ferretdb"] = "secantus"
    # Documents per bulk_write of the job's sink; 0 means the default for MONGO_SERVER (see mongo_bulk_size).
    mongo_bulk_documents: int = Field(0, ge=0)

    # The speed layer's consumer group (speed_layer/consumer.py); empty means "speed-layer-<product topic>".
    speed_layer_group: str = ""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = "http://127.0.0.1:8000"
    api_key: str = ""

    dashboard_port: int = 8501

    runtime_dir: Path = PROJECT_ROOT / "var"
    lakehouse_path: Path | None = None
    checkpoint_path: Path | None = None

    spark_master: str = "local[2]"
    spark_driver_memory: str = "1g"
    # Each executor's heap on a Spark cluster (SPARK_MASTER spark://...); unused in local mode.
    spark_executor_memory: str = "512m"
    # The standalone master's web UI (Spark's own variable of that name), which also tells the stack which
    # workers are alive; the stack's cluster only (stack/spark_cluster.py).
    spark_master_webui_port: int = 8090
    spark_driver_host: str = "127.0.0.1"
    spark_jars_dir: Path = PROJECT_ROOT / "build" / "jars" / "spark"
    stream_trigger_seconds: float = Field(2.0, gt=0)
    stream_max_offsets_per_trigger: int = Field(50_000, gt=0)
    # Where the streaming job refreshes gold and its trends: "in-batch", at the end of every micro-batch, or
    # "background", on a thread of its own that rests GOLD_REFRESH_PAUSE_SECONDS after each refresh
    # (spark_jobs/gold_refresher.py). bench/freshness.py measures both; on 2 cores in-batch is fresher.
    gold_refresh: Literal["in-batch", "background"] = "in-batch"
    gold_refresh_pause_seconds: float = Field(2.0, ge=0)
    # Spark's Kafka `failOnDataLoss`: true stops the job when records it has not read are gone from Kafka
    # (retention, deleted records); false skips them, for one start after such a stop (spark_jobs/supervisor.py).
    stream_fail_on_data_loss: bool = True
    # Gold over time (issue #12): one point per category per bucket of this many seconds of broker time; the
    # dashboard's Trends page resamples them. `make run` spaces the generated days one bucket apart.
    trends_bucket_seconds: int = Field(60, gt=0)
    # Crash tests only: the job SIGKILLs itself right after this step of a micro-batch ("mongo", ...) or of a
    # gold refresh ("gold", "delta_gold", "points", "movers").
    stream_crash_after_step: str = ""

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_local(self) -> Settings:
        if self.environment != "local" and self.api_key == DEFAULT_API_KEY:
            raise ValueError(f"API_KEY must be changed outside local mode, got {DEFAULT_API_KEY!r}")
        return self

    @model_validator(mode="after")
    def _refuse_more_in_sync_replicas_than_replicas(self) -> Settings:
        # Kafka accepts such a topic, then refuses every acks=all write to it (NOT_ENOUGH_REPLICAS): the API
        # would answer 503 to everything.
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS={self.kafka_min_insync_replicas} is more than "
                f"KAFKA_REPLICATION_FACTOR={self.kafka_replication_factor}: no write could be acknowledged"
            )
        return self

    # Properties, not cached_property: model_copy(update=...) copies a cached value along with the fields, so a
    # copy given another LAKEHOUSE_PATH would go on writing to the first one's lakehouse.
    @property
    def lakehouse_dir(self) -> Path:
        return self.lakehouse_path or self.runtime_dir / "lakehouse"

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoint_path or self.runtime_dir / "checkpoints"

    @property
    def query_checkpoint_dir(self) -> Path:
        """The streaming query's own checkpoint folder (offsets, commits; `make reset-checkpoint` moves it)."""
        return self.checkpoint_dir / "ingest"

    @property
    def mongo_bulk_size(self) -> int:
        """1,000 documents per bulk_write; FerretDB 1.24 deadlocks on a bulk upsert that matches more than 99
        stored documents (one cursor and pool connection held per matched statement), so 50 there."""
        if self.mongo_bulk_documents:
            return self.mongo_bulk_documents
        return 50 if self.mongo_server == "ferretdb" else 1_000

    @property
    def speed_layer_group_id(self) -> str:
        """SPEED_LAYER_GROUP, else `speed-layer-<KAFKA_TOPIC_PRODUCTS>`: one group per product topic."""
        return self.speed_layer_group or f"speed-layer-{self.kafka_topic_products}"

    @property
    def kafka_topics(self) -> tuple[str, str]:
        """The topics the streaming job reads."""
        return (self.kafka_topic_products, self.kafka_topic_categories)

    @property
    def transactional_id_prefix(self) -> str:
        """KAFKA_TRANSACTIONAL_ID, else `api-<host>-<port>`; not an id itself: see process_transactional_ids."""
        return self.kafka_transactional_id or f"api-{socket.gethostname()}-{self.api_port}"


def settings_env(config: Settings) -> dict[str, str]:
    """The environment that gives a child process these same settings."""
    return {
        name.upper(): str(value)
        for name, value in config.model_dump().items()
        if value is not None and not isinstance(value, dict)
    }


# `python -m stack up --cluster`: three Kafka nodes on loopback (each its controller on the port after its
# broker's), topics on all three with two in sync, and a Spark standalone master. An environment variable of
# the same name wins, as for every setting.
CLUSTER_DEFAULTS: dict[str, object] = {
    "kafka_bootstrap_servers": "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096",
    "kafka_replication_factor": 3,
    "kafka_min_insync_replicas": 2,
    "spark_master": "spark://127.0.0.1:7077",
    # On a cluster the driver runs no tasks (the executors do): it plans, and holds one batch's serving rows on
    # their way to MongoDB. With local mode's 1g it committed 0.7-0.9 GiB of heap there (Native Memory
    # Tracking), the largest share of the cluster's memory.
    "spark_driver_memory": "512m",
}


def cluster_settings(**overrides: object) -> Settings:
    """Settings for cluster mode: CLUSTER_DEFAULTS where the environment does not set the variable, then
    `overrides` on top."""
    defaults = {name: value for name, value in CLUSTER_DEFAULTS.items() if name.upper() not in os.environ}
    return load_settings(**(defaults | overrides))


def load_settings(**overrides: object) -> Settings:
    """A fresh read of the environment, with `overrides` on top (tests give each run its own names)."""
    return Settings(**overrides)  # type: ignore[arg-type]


settings = load_settings()
