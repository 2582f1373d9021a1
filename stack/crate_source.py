"""Unpack crates' published sources from crates.io, checked against the registry index, so that a patch of ours
can be applied before `cargo install` builds them (Makefile: the secantus server).

    python -m stack.crate_source --version 0.5.3-beta.196 --into build/secantus-src secantus-storage ...

Each crate lands in `<into>/<name>/`. The download is the one cargo itself would fetch: the `dl` address of the
sparse index's config.json, and its SHA-256 must equal the index's `cksum` for that version (a mismatch or a
version the index does not list is an error, and nothing is unpacked). Standard library only: it runs before the
project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path

INDEX = "https://index.crates.io"


class CrateSourceError(RuntimeError):
    """The index does not list the version, or the download is not the file the index describes."""


def index_path(name: str) -> str:
    """The sparse index's path of a crate's entry (the layout cargo uses: 1/, 2/, 3/a/, ab/cd/)."""
    lowered = name.lower()
    if len(lowered) <= 2:
        return f"{len(lowered)}/{lowered}"
    if len(lowered) == 3:
        return f"3/{lowered[0]}/{lowered}"
    return f"{lowered[:2]}/{lowered[2:4]}/{lowered}"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def published_checksum(index_entry: str, name: str, version: str) -> str:
    """The SHA-256 (hex) the index gives for `version`, from its one-JSON-object-per-line entry."""
    for line in index_entry.splitlines():
        release = json.loads(line)
        if release["vers"] == version:
            return release["cksum"]
    raise CrateSourceError(f"crates.io lists no {name} {version}")


def verified_crate(name: str, version: str) -> bytes:
    """The `.crate` archive (gzipped tar) of `name` `version`, checked against the index's checksum."""
    download_root = json.loads(_get(f"{INDEX}/config.json"))["dl"]
    expected = published_checksum(_get(f"{INDEX}/{index_path(name)}").decode(), name, version)
    archive = _get(f"{download_root}/{name}/{version}/download")
    actual = hashlib.sha256(archive).hexdigest()
    if actual != expected:
        raise CrateSourceError(f"{name} {version}: downloaded SHA-256 {actual}, the index says {expected}")
    return archive


def unpack(archive: bytes, name: str, version: str, into: Path) -> Path:
    """Unpack the archive's single top folder `<name>-<version>/` as `<into>/<name>/`; returns that folder."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    target = into / name
    (into / f"{name}-{version}").rename(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True, help="one version for every crate named")
    parser.add_argument("--into", type=Path, required=True, help="the folder to unpack into (created)")
    parser.add_argument("crates", nargs="+")
    options = parser.parse_args(argv)
    options.into.mkdir(parents=True, exist_ok=True)
    for name in options.crates:
        unpack(verified_crate(name, options.version), name, options.version, options.into)


if __name__ == "__main__":
    main()
