"""stack/crate_source.py: where cargo's sparse index keeps a crate, the checksum of one version, and unpacking."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from stack.crate_source import CrateSourceError, index_path, published_checksum, unpack


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a", "1/a"),
        ("ab", "2/ab"),
        ("abc", "3/a/abc"),
        ("secantus-mdb", "se/ca/secantus-mdb"),
        ("Serde", "se/rd/serde"),
    ],
)
def test_index_path_follows_cargo_layout(name: str, path: str) -> None:
    assert index_path(name) == path


def test_published_checksum_is_that_of_the_version_asked() -> None:
    entry = "\n".join(json.dumps({"name": "c", "vers": v, "cksum": f"sum-{v}"}) for v in ["0.1.0", "0.2.0"])
    assert published_checksum(entry, "c", "0.2.0") == "sum-0.2.0"
    with pytest.raises(CrateSourceError, match=r"no c 0\.3\.0"):
        published_checksum(entry, "c", "0.3.0")


def test_unpack_names_the_folder_after_the_crate(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        content = b"[package]\n"
        member = tarfile.TarInfo("c-0.2.0/Cargo.toml")
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content))
    folder = unpack(archive.getvalue(), "c", "0.2.0", tmp_path)
    assert folder == tmp_path / "c"
    assert (folder / "Cargo.toml").read_bytes() == b"[package]\n"
