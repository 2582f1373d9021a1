"""The one way this project opens a MongoDB connection: the job's sink, the read API, the dashboard, the
stack launcher, the benchmarks and the tests all call `mongo_client` or `serving_db`.

Timeouts are bounded so that an unreachable or stalled server fails a call with a PyMongoError (which each
caller turns into a 503, a restart from the checkpoint, or a message) instead of hanging it.
"""

from __future__ import annotations

import re

from pymongo import MongoClient
from pymongo.database import Database

from lakehouse.settings import Settings

SERVER_SELECTION_TIMEOUT_MS = 5_000
# The longest single call the job makes is one bulk_write of a sink chunk; generous, but bounded.
SOCKET_TIMEOUT_MS = 120_000


def mongo_client(
    uri: str,
    *,
    server_selection_timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
    socket_timeout_ms: int = SOCKET_TIMEOUT_MS,
    app_name: str = "amazon-lakehouse",
) -> MongoClient:
    """A pooled client for `uri` (a single server, a replica set or mongodb+srv: whatever MONGO_URI says)."""
    return MongoClient(
        uri,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        connectTimeoutMS=min(server_selection_timeout_ms, 10_000),
        socketTimeoutMS=socket_timeout_ms,
        appname=app_name,
    )


def serving_db(config: Settings, **client_options: int | str) -> Database:
    """The serving database MONGO_DB on MONGO_URI."""
    return mongo_client(config.mongo_uri, **client_options)[config.mongo_db]  # type: ignore[arg-type]


def redacted_uri(uri: str) -> str:
    """`uri` without its password, for logs and pages (docker-compose's URI carries the root password)."""
    return re.sub(r"(?<=://)([^/@:]*):[^/@]*@", r"\1:***@", uri)
