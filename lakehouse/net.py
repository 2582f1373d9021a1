"""Small network helpers shared by the stack launcher and the services' readiness checks."""

from __future__ import annotations

import socket


def host_port(address: str, default_port: int = 9092) -> tuple[str, int]:
    """'host:port' -> (host, port); a bare host gets `default_port`."""
    host, sep, port = address.strip().rpartition(":")
    if not sep:
        return address.strip(), default_port
    return host or "127.0.0.1", int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def any_bootstrap_reachable(bootstrap_servers: str) -> bool:
    return any(port_open(*host_port(server)) for server in bootstrap_servers.split(",") if server.strip())
