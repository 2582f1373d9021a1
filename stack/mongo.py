"""The MongoDB-wire server of the local stack.

In order of preference: a server already answering at MONGO_URI (a real MongoDB or replica set; nothing
is started), a `mongod` found on PATH, or FerretDB 1.x with its SQLite backend built into build/bin by
`make setup` (no MongoDB server can be installed on these machines). The last two listen on MONGO_URI's
host and port, which must then be local.
"""

from __future__ import annotations

import logging
import shutil
from urllib.parse import urlparse

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lakehouse.settings import PROJECT_ROOT, Settings
from stack.processes import ServiceProcess, wait_until

log = logging.getLogger(__name__)

FERRETDB_BINARY = PROJECT_ROOT / "build" / "bin" / "ferretdb"


def mongo_ping(uri: str, timeout_ms: int = 1000) -> bool:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


class MongoServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.runtime_dir / "mongo"
        self.process = ServiceProcess("mongo", settings.runtime_dir)

    @property
    def kind(self) -> str:
        return "mongod" if shutil.which("mongod") else "ferretdb"

    def _listen(self) -> tuple[str, int]:
        parsed = urlparse(self.settings.mongo_uri)
        return parsed.hostname or "127.0.0.1", parsed.port or 27017

    def command(self) -> list[str]:
        host, port = self._listen()
        if self.kind == "mongod":
            return [
                "mongod",
                "--dbpath",
                str(self.home / "mongod"),
                "--bind_ip",
                host,
                "--port",
                str(port),
                "--wiredTigerCacheSizeGB",
                "0.5",
            ]
        if not FERRETDB_BINARY.exists():
            raise RuntimeError(f"{FERRETDB_BINARY} missing: run `make setup`")
        return [
            str(FERRETDB_BINARY),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.home / 'sqlite'}/",
            f"--listen-addr={host}:{port}",
            f"--state-dir={self.home / 'state'}",
            "--debug-addr=127.0.0.1:0",
            "--telemetry=disable",
            "--log-level=warn",
        ]

    def start(self, timeout: float = 60.0) -> None:
        if not self.process.is_running() and mongo_ping(self.settings.mongo_uri):
            log.info("a MongoDB server already answers at %s; using it", self.settings.mongo_uri)
            return
        for folder in ("mongod", "sqlite", "state"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        self.process.start(self.command())
        if not wait_until(lambda: mongo_ping(self.settings.mongo_uri), timeout, interval=0.5):
            raise RuntimeError(f"MongoDB ({self.kind}) not reachable in {timeout:.0f}s:\n{self.process.log_tail()}")

    def stop(self) -> bool:
        return self.process.stop()
