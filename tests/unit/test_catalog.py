"""The serving catalog is the only place that names a MongoDB collection (issue #12)."""

from __future__ import annotations

import ast
import re
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


DATABASE_NAMES = {"db", "database", "serving_db", "client", "mongo"}
COLLECTION_CALLS = {"get_collection", "drop_collection", "create_collection", "getattr"}


def is_database(node: ast.expr) -> bool:
    """`db`, `self.db`, `database()`, `serving_db(config)`, `client["amazon"]`: an expression that names a
    pymongo Database or client."""
    if isinstance(node, ast.Call | ast.Subscript):
        return is_database(node.func if isinstance(node, ast.Call) else node.value)
    if isinstance(node, ast.Attribute):  # `self.db`, or `client.amazon`: a database as an attribute of a client
        return node.attr in DATABASE_NAMES or is_database(node.value)
    return isinstance(node, ast.Name) and node.id in DATABASE_NAMES


def is_collection_literal(value: object) -> bool:
    """One of the unambiguous names, or the "gold_" an f-string or a %-format builds one from."""
    return isinstance(value, str) and (value in UNAMBIGUOUS or re.fullmatch(r"gold_\S*", value) is not None)


def names_a_collection(node: ast.AST) -> bool:
    """`db.products`, `db["products"]`, `client.amazon.products`, `db.get_collection("products")`,
    `getattr(db, "products")`, or a literal no other code means ("price_history", "gold_...")."""
    if isinstance(node, ast.Attribute):
        return node.attr in NAMES and is_database(node.value)
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and key.value in NAMES and is_database(node.value)
    if isinstance(node, ast.Call):
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        literals = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
        return called in COLLECTION_CALLS and any(value in NAMES for value in literals)
    return isinstance(node, ast.Constant) and is_collection_literal(node.value)


def spelled_collections(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if names_a_collection(node):
            yield getattr(node, "lineno", 0), ast.unparse(node)


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


@pytest.mark.parametrize(
    "spelling",
    [
        "db.products.find()",
        'db["categories"].find()',
        'client["amazon"]["quarantine"]',
        "client.amazon.products",
        'db.get_collection("quarantine")',
        'getattr(db, "products")',
        'self.db["gold_%s" % name]',
        'f"gold_{name}"',
        'serving_db(config)["price_history"]',
    ],
)
def test_the_check_sees_every_way_of_naming_a_collection(spelling: str) -> None:
    assert list(spelled_collections(ast.parse(spelling)))


@pytest.mark.parametrize(
    "innocent", ['numbers["products"]', 'parser.add_argument("--products")', "steps['quarantine']"]
)
def test_the_check_leaves_other_uses_of_the_words_alone(innocent: str) -> None:
    assert not list(spelled_collections(ast.parse(innocent)))
