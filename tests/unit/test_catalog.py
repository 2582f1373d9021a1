"""The serving catalog is the only place that names a MongoDB collection (issue #12)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import catalog

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("api_ingest", "client", "dashboard", "lakehouse", "spark_jobs", "stack", "bench", "dataset")
NAMES = {collection.name for collection in catalog.ALL}
# Names no other code means by accident: a literal of one of these is a collection spelled outside the catalog.
UNAMBIGUOUS = {name for name in NAMES if name not in {"products", "categories", "quarantine"}}


def sources() -> Iterator[Path]:
    for component in COMPONENTS:
        yield from (path for path in (ROOT / component).rglob("*.py") if path != ROOT / "lakehouse" / "catalog.py")


def is_database(node: ast.expr) -> bool:
    """`db`, `self.db`, `database()`, `serving_db(config)`: an expression that names a pymongo Database."""
    if isinstance(node, ast.Call):
        node = node.func
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name in {"db", "database", "serving_db"}


def is_collection_literal(value: object) -> bool:
    """One of the unambiguous names, or the "gold_" of an f-string that builds one."""
    return isinstance(value, str) and (value in UNAMBIGUOUS or value == "gold_")


def spelled_collections(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in NAMES and is_database(node.value):
            yield node.lineno, f"db.{node.attr}"
        elif isinstance(node, ast.Constant) and is_collection_literal(node.value):
            yield node.lineno, repr(node.value)


@pytest.mark.parametrize("path", sorted(sources()), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_collection_is_named_outside_the_catalog(path: Path) -> None:
    found = list(spelled_collections(ast.parse(path.read_text(), str(path))))
    assert not found, f"{path.relative_to(ROOT)} names collections itself (use lakehouse.catalog): {found}"


def test_catalog_names_are_unique_and_indexed_fields_exist() -> None:
    assert len(NAMES) == len(catalog.ALL)
    for collection in catalog.ALL:
        for index in collection.indexes:
            assert set(index) <= {"_id", *collection.fields}, (collection.name, index)


def test_a_rebuild_keeps_what_it_cannot_recompute() -> None:
    kept = {collection.name for collection in catalog.ALL if not collection.derived}
    assert kept == {"pipeline_status", "pipeline_events", "gold_category_history"}
