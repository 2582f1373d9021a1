"""The MongoDB-wire server of the local stack.

In order of preference: a server already answering at MONGO_URI (a real MongoDB or replica set; nothing
is started), a `mongod` found on PATH, or the embedded server named by MONGO_SERVER, installed into build/
by `make setup` (no MongoDB server package can be installed on these machines). The last two listen on
MONGO_URI's host and port, which must then be local.

The embedded default was chosen by `bench/mongo_servers.py`; README.md ("The serving database") has the
figures. FerretDB stays selectable (`MONGO_SERVER=ferretdb make run`); the other candidates are the
benchmark's only (`make bench-mongo-servers` installs them).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pymongo.errors import PyMongoError

from lakehouse.mongo import mongo_client
from lakehouse.settings import PROJECT_ROOT, Settings
from stack.processes import ServiceProcess, wait_until

log = logging.getLogger(__name__)

MONGO_SERVERS_DIR = PROJECT_ROOT / "build" / "mongo-servers"


@dataclass(frozen=True)
class EmbeddedServer:
    """A MongoDB-wire server the stack can run itself: its executable and how it is started."""

    name: str
    executable: Path
    arguments: Callable[[str, int, Path], list[str]]
    licence: str

    def installed(self) -> bool:
        return self.executable.exists()

    def command(self, host: str, port: int, home: Path) -> list[str]:
        if not self.installed():
            raise RuntimeError(
                f"{self.executable} missing: run `make setup MONGO_SERVER={self.name}` "
                "(`make bench-mongo-servers` for the benchmark's other candidates)"
            )
        return [str(self.executable), *self.arguments(host, port, home)]


def _secantus_arguments(host: str, port: int, home: Path) -> list[str]:
    # --standalone: the driver then talks to it as to a single mongod, not a one-node replica set.
    return ["--host", host, "--port", str(port), "--storage-path", str(home), "--standalone", "--cache-size", "512M"]


def _nx_arguments(host: str, port: int, home: Path) -> list[str]:
    return ["--host", host, "--port", str(port), "--data-dir", str(home), "--log-file", str(home / "nx.log")]


def _ferretdb_arguments(host: str, port: int, home: Path) -> list[str]:
    return [
        "--handler=sqlite",
        f"--sqlite-url=file:{home}/",
        f"--listen-addr={host}:{port}",
        f"--state-dir={home}",
        "--debug-addr=127.0.0.1:0",
        "--telemetry=disable",
        "--log-level=warn",
    ]


EMBEDDED_SERVERS: dict[str, EmbeddedServer] = {
    server.name: server
    for server in (
        EmbeddedServer(
            "secantus",
            MONGO_SERVERS_DIR / "secantus" / "bin" / "secantusd-rs",
            _secantus_arguments,
            "GPL-2.0-only (crate secantus-mdb, WiredTiger inside)",
        ),
        EmbeddedServer(
            "secantusdb",
            MONGO_SERVERS_DIR / "secantusdb" / "bin" / "secantusd-py",
            _secantus_arguments,
            "GPL-2.0-only (PyPI secantusdb, WiredTiger inside)",
        ),
        EmbeddedServer("nx-27017", MONGO_SERVERS_DIR / "nx-27017" / "bin" / "nx-27017", _nx_arguments, "MIT"),
        EmbeddedServer(
            "ferretdb", PROJECT_ROOT / "build" / "bin" / "ferretdb", _ferretdb_arguments, "Apache-2.0 (FerretDB 1.24)"
        ),
    )
}


def mongo_ping(uri: str, timeout_ms: int = 1000) -> bool:
    client = mongo_client(uri, server_selection_timeout_ms=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


class MongoServer:
    def __init__(self, settings: Settings, name: str = "mongo") -> None:
        self.settings = settings
        self.home = settings.runtime_dir / name
        self.process = ServiceProcess(name, settings.runtime_dir)

    @property
    def kind(self) -> str:
        return "mongod" if shutil.which("mongod") else self.settings.mongo_server

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
        return EMBEDDED_SERVERS[self.kind].command(host, port, self.home / self.kind)

    def start(self, timeout: float = 60.0) -> None:
        if not self.process.is_running() and mongo_ping(self.settings.mongo_uri):
            log.info("a MongoDB server already answers at %s; using it", self.settings.mongo_uri)
            return
        (self.home / self.kind).mkdir(parents=True, exist_ok=True)
        self.process.start(self.command())
        if not wait_until(lambda: mongo_ping(self.settings.mongo_uri), timeout, interval=0.2):
            raise RuntimeError(f"MongoDB ({self.kind}) not reachable in {timeout:.0f}s:\n{self.process.log_tail()}")

    def stop(self) -> bool:
        return self.process.stop()
