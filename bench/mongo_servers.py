"""The embedded MongoDB-wire server candidates, side by side on what the job and the readers really issue.

    make bench-mongo-servers                       # installs every candidate, then runs this
    .venv/bin/python -m bench.mongo_servers --sizes 100000 1400000 [--candidates secantus ferretdb ...]

For each candidate and size: start the server on a fresh data folder, create the serving indexes on the
empty collection (as the job's sink does), load `size` product documents shaped as the job writes them,
then time each operation below with a budget (a call still running at the budget is abandoned and the
server restarted, so one stalled operation does not hide the others). The job's MongoDB step is timed on a
50,000-row micro-batch (half updates, half new products) with the job's sink; on FerretDB also with the
sink it replaced (delete the updated keys, then insert_many): that pair is the "today vs new" figure.
Memory is the server's peak resident set over the whole run of that size.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, DESCENDING, DeleteMany, InsertOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from dataset.generate import asin_for, product_rows
from lakehouse import catalog
from lakehouse.mongo import mongo_client
from lakehouse.serving import search_products
from spark_jobs.mongo_sink import MongoSink, chunks, guarded_replace
from stack.mongo import EMBEDDED_SERVERS, EmbeddedServer, mongo_ping
from stack.processes import Poller, ServiceProcess, wait_until
from stack.services import process_tree_rss

ROOT = Path(__file__).resolve().parent.parent / "var" / "bench" / "mongo_servers"
DATABASE = "bench"
CATEGORIES = 248
FIRST_PORT = 27300


class OverBudget(Exception):
    pass


def product_documents(start: int, count: int, version: int = 1) -> Iterator[dict[str, Any]]:
    """Documents as the job writes them (`_id` = asin, Kafka coordinates, `_v`), for products start.. ."""
    rows = islice(product_rows(start + count, CATEGORIES, seed=11), start, None)
    for offset, row in enumerate(rows, start=start):
        yield {
            "_id": row["asin"],
            **row,
            "category_name": f"Category {row['category_id']}",
            "_rescued_data": None,
            "_topic": "ingest-product",
            "_partition": offset % 3,
            "_offset": offset,
            "_kafka_ts": None,
            "_v": version,
        }


def repriced(documents: Iterator[dict[str, Any]], version: int) -> list[dict[str, Any]]:
    return [{**d, "price": round(d["price"] + 1, 2), "_v": version} for d in documents]


@dataclass
class Candidate:
    name: str
    server: EmbeddedServer
    # FerretDB 1.24/SQLite indexes `_id` on another JSON expression than its queries use; this variant adds
    # an index on the queried expression by hand, inside FerretDB's own tables (a bench-only experiment).
    hand_made_id_index: bool = False


CANDIDATES = {
    "secantus": Candidate("secantus", EMBEDDED_SERVERS["secantus"]),
    "nx-27017": Candidate("nx-27017", EMBEDDED_SERVERS["nx-27017"]),
    "secantusdb": Candidate("secantusdb", EMBEDDED_SERVERS["secantusdb"]),
    "ferretdb": Candidate("ferretdb", EMBEDDED_SERVERS["ferretdb"]),
    "ferretdb+_id index": Candidate("ferretdb+_id index", EMBEDDED_SERVERS["ferretdb"], hand_made_id_index=True),
}


@dataclass
class RunningServer:
    candidate: Candidate
    home: Path
    port: int
    budget_seconds: float

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def process(self) -> ServiceProcess:
        return ServiceProcess(f"bench-{self.candidate.server.name}-{self.port}", self.home.parent / "run")

    def start(self) -> float:
        started = time.perf_counter()
        self.process.start(self.candidate.server.command("127.0.0.1", self.port, self.home))
        if not wait_until(lambda: mongo_ping(self.uri, 500), 120, interval=0.05):
            raise RuntimeError(f"{self.candidate.name} did not start:\n{self.process.log_tail()}")
        return time.perf_counter() - started

    def stop(self) -> None:
        self.process.stop(timeout=60)

    def database(self) -> Database:
        client = mongo_client(self.uri, socket_timeout_ms=int(self.budget_seconds * 1000))
        return client[DATABASE]


def add_hand_made_id_index(home: Path) -> None:
    with sqlite3.connect(home / f"{DATABASE}.sqlite", timeout=60) as sql:
        query = "SELECT table_name FROM _ferretdb_collections WHERE name = ?"
        (table,) = sql.execute(query, (catalog.PRODUCTS.name,)).fetchone()
        sql.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS products_id_expr ON \"{table}\" (_ferretdb_sjson->'$._id')")


def create_serving_collection(server: RunningServer) -> tuple[Collection, str]:
    """The products collection with the catalog's indexes; a server that refuses one gets the first field only."""
    products = server.database().create_collection(catalog.PRODUCTS.name)
    notes = []
    for fields in catalog.PRODUCTS.indexes:
        try:
            products.create_index([(f, ASCENDING) for f in fields])
            products.insert_one({"_id": "probe", "category_id": 1})  # nx-27017 fails only here
            products.delete_one({"_id": "probe"})
        except PyMongoError as error:
            notes.append(f"index {fields} breaks writes ({str(error)[:50]}): {fields[0]} alone")
            products.drop_indexes()
            products.create_index([(fields[0], ASCENDING)])
    if server.candidate.hand_made_id_index:
        add_hand_made_id_index(server.home)
    return products, "; ".join(notes) or "as the sink creates them"


# --- the operations: each returns (seconds, note) ---------------------------------------------------------------

Operation = Callable[[Collection, int, float], tuple[float, str]]


def _timed(work: Callable[[], str]) -> tuple[float, str]:
    started = time.perf_counter()
    note = work()
    return time.perf_counter() - started, note


def load(products: Collection, size: int) -> str:
    seconds, _ = _timed(
        lambda: str([products.insert_many(c, ordered=False) for c in chunks(product_documents(0, size), 10_000)])
    )
    return f"{size / seconds:,.0f} docs/s ({seconds:.0f} s)"


def find_one_median(products: Collection, size: int, deadline: float) -> tuple[float, str]:
    timings = []
    for i in range(200):
        if time.monotonic() > deadline:
            raise OverBudget
        started = time.perf_counter()
        assert products.find_one({"_id": asin_for(1 + (i * 7919) % size)}) is not None
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), "median of 200"


def in_5000(products: Collection, size: int, _deadline: float) -> tuple[float, str]:
    asins = [asin_for(1 + (i * 104_729) % size) for i in range(5_000)]
    return _timed(lambda: f"{len(list(products.find({'_id': {'$in': asins}}, {'_id': 1})))} found")


def _sink_batch(size: int, count: int, version: int) -> list[dict[str, Any]]:
    """`count` documents: the first half updates of stored products, the second half new ones."""
    updates = repriced(product_documents(0, count // 2), version)
    return updates + list(product_documents(size + (version - 2) * count, count - count // 2, version))


def guarded_upserts(products: Collection, size: int, deadline: float, calls_of: int = 2_000) -> tuple[float, str]:
    batch = _sink_batch(size, 2_000, version=2 if calls_of == 2_000 else 3)

    def work() -> str:
        for chunk in chunks(batch, calls_of):
            if time.monotonic() > deadline:
                raise OverBudget
            products.bulk_write([guarded_replace(d) for d in chunk], ordered=False)
        return f"calls of {calls_of}"

    return _timed(work)


def stale_replay(products: Collection, size: int, _deadline: float) -> tuple[float, str]:
    """The first 2,000 products again at version 0: every write must be refused by the version guard."""
    old = [{**d, "price": -1.0, "_v": 0} for d in product_documents(0, 2_000)]

    def work() -> str:
        stats = MongoSink(products.database, chunk_size=2_000).upsert_products(old)
        changed = products.count_documents({"_id": {"$in": [d["_id"] for d in old]}, "price": -1.0})
        return f"{stats.stale} refused, {changed} overwritten"

    return _timed(work)


def old_sink(products: Collection, size: int, _deadline: float, count: int = 2_000) -> tuple[float, str]:
    """The sink this project replaced: delete the updated keys by `_id`, then insert_many the batch."""
    batch = _sink_batch(size, count, version=4 if count == 2_000 else 6)
    updated = [d["_id"] for d in batch[: count // 2]]

    def work() -> str:
        operations: list[Any] = [DeleteMany({"_id": {"$in": c}}) for c in chunks(updated, 20_000)]
        products.bulk_write(operations, ordered=True)
        for chunk in chunks(batch, 5_000):
            products.bulk_write([InsertOne(d) for d in chunk], ordered=False)
        return f"{count:,} documents"

    return _timed(work)


def job_step(products: Collection, size: int, _deadline: float, count: int = 50_000) -> tuple[float, str]:
    """The job's MongoDB step on a micro-batch of `count` rows (half updates) through MongoSink."""
    batch = _sink_batch(size, count, version=5)
    return _timed(lambda: f"{MongoSink(products.database).upsert_products(batch).written:,} written")


def group_avg(products: Collection, _size: int, _deadline: float) -> tuple[float, str]:
    pipeline = [{"$group": {"_id": "$category_id", "avg_price": {"$avg": "$price"}, "n": {"$sum": 1}}}]
    return _timed(lambda: f"{len(list(products.aggregate(pipeline)))} groups")


def count_category(products: Collection, _size: int, _deadline: float) -> tuple[float, str]:
    return _timed(lambda: f"{products.count_documents({'category_id': 7}):,} products")


def sort_price(products: Collection, _size: int, _deadline: float) -> tuple[float, str]:
    return _timed(lambda: f"{len(list(products.find().sort('price', DESCENDING).limit(50)))} rows")


def read_api_page(products: Collection, _size: int, _deadline: float) -> tuple[float, str]:
    """GET /products?category_id=7: lakehouse.serving.search_products, as the read API calls it."""
    plan = _plan(products, {"category_id": 7})
    return _timed(lambda: f"{len(search_products(products.database, category_id=7, limit=50)[0])} rows; {plan}")


def title_search(products: Collection, _size: int, _deadline: float) -> tuple[float, str]:
    """The dashboard's Products page: title words, 20 results."""
    return _timed(lambda: f"{len(search_products(products.database, q='premium backpack', limit=20)[0])} rows")


def _plan(products: Collection, query: dict[str, Any]) -> str:
    """The winning plan's stages, e.g. 'LIMIT<FETCH<IXSCAN' (what the server says; '?' when it won't)."""
    try:
        explained = products.find(query).sort("_id", ASCENDING).limit(51).explain()
    except PyMongoError as error:
        return f"explain: {error.__class__.__name__}"
    stages, plan = [], explained.get("queryPlanner", {}).get("winningPlan", {})
    if isinstance(plan, list):  # nx-27017 answers with SQLite's own plan lines
        return " / ".join(str(step.get("detail", step)) for step in plan)[:80]
    while isinstance(plan, dict) and plan:
        stages.append(str(plan.get("stage", "?")))
        plan = plan.get("inputStage") or (plan.get("inputStages") or [None])[0] or {}
    return "<".join(stages) or "no plan"


OPERATIONS: dict[str, Operation] = {
    "find_one by _id (median)": find_one_median,
    "$in of 5,000 _ids": in_5000,
    "2,000 guarded ReplaceOne upserts, one bulk_write": guarded_upserts,
    "the same in calls of 40": lambda c, s, d: guarded_upserts(c, s, d, calls_of=40),
    "2,000 older versions replayed (all refused)": stale_replay,
    "old sink: delete 2,000 by _id + insert 2,000": old_sink,
    "$group with $avg": group_avg,
    "count by indexed category_id": count_category,
    "sort by price, limit 50": sort_price,
    "read API: a category's first page": read_api_page,
    "dashboard: title words search": title_search,
    "job's MongoDB step, 50,000-row batch (MongoSink)": job_step,
}
BASELINE_ONLY = {
    "job's MongoDB step, 50,000-row batch (the old sink)": lambda c, s, d: old_sink(c, s, d, count=50_000),
}


class ServerMemory(Poller):
    """Peak resident memory of a server's process tree, sampled every 0.5 s; its pid is read each time, as
    `_restart` starts a new process."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(0.5)
        self.server = server
        self.peak = 0

    def poll(self) -> None:
        if (pid := self.server.process.pid()) is not None:
            self.peak = max(self.peak, process_tree_rss(pid))


def run_candidate(candidate: Candidate, size: int, budget: float, job_budget: float, port: int) -> dict[str, str]:
    home = ROOT / f"{candidate.name.replace(' ', '_')}-{size}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    server = RunningServer(candidate, home, port, budget)
    results: dict[str, str] = {"start (s)": f"{server.start():.2f} s"}
    memory = ServerMemory(server)
    try:
        with memory:
            products, results["indexes"] = create_serving_collection(server)
            results["insert_many"] = load(products, size)
            operations = OPERATIONS | (BASELINE_ONLY if candidate.name == "ferretdb" else {})
            for name, operation in operations.items():
                limit = job_budget if name.startswith("job's") else budget
                results[name] = _attempt(server, operation, size, limit)
                print(f"  {candidate.name} @ {size:,}: {name}: {results[name]}", flush=True)
            results["restart keeps every document"] = _restart(server, size)
    finally:
        server.stop()
    results["memory peak"] = f"{memory.peak / 2**30:.2f} GiB"
    for name in ("start (s)", "insert_many", "restart keeps every document", "memory peak"):
        print(f"  {candidate.name} @ {size:,}: {name}: {results.get(name, '')}", flush=True)
    return results


def _attempt(server: RunningServer, operation: Operation, size: int, budget: float) -> str:
    server.budget_seconds = budget
    products = server.database()[catalog.PRODUCTS.name]
    try:
        seconds, note = operation(products, size, time.monotonic() + budget)
    except Exception as error:  # a server that breaks the protocol raises KeyError etc. inside pymongo
        if not isinstance(error, OverBudget) and "timed out" not in str(error):
            return f"failed: {error.__class__.__name__} {str(error)[:80]}"
        server.stop()  # a stalled server keeps working on the abandoned call
        server.start()
        return f"> {budget:.0f} s"
    finally:
        products.database.client.close()
    shown = f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds:.2f} s"
    return f"{shown} ({note})"


def _restart(server: RunningServer, size: int) -> str:
    try:
        before = server.database()[catalog.PRODUCTS.name].estimated_document_count()
        server.stop()
        seconds = server.start()
        after = server.database()[catalog.PRODUCTS.name].count_documents({})
    except PyMongoError as error:  # FerretDB's count at 1.4M outlasts the budget
        return f"not checked: {error.__class__.__name__}"
    return f"{'yes' if after == before and after >= size else 'NO'} ({after:,} of {before:,}; {seconds:.1f} s)"


def print_table(size: int, results: dict[str, dict[str, str]]) -> None:
    names = list(results)
    rows = list(dict.fromkeys(row for r in results.values() for row in r))
    print(f"\n## {size:,} product documents\n")
    print("| operation | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for row in rows:
        print(f"| {row} | " + " | ".join(results[n].get(row, "") for n in names) + " |")
    for name in names:
        print(f"- {name}: {CANDIDATES[name].server.licence}")
    _print_job_step_ratio(results)


def _print_job_step_ratio(results: dict[str, dict[str, str]]) -> None:
    old = results.get("ferretdb", {}).get(next(iter(BASELINE_ONLY)))
    new = {n: r.get("job's MongoDB step, 50,000-row batch (MongoSink)") for n, r in results.items()}
    if old:
        print(
            f"\nThe job's MongoDB step, 50,000 rows: today (FerretDB, old sink) {old}; "
            + "; ".join(f"{n} with MongoSink {v}" for n, v in new.items() if v)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--budget-seconds", type=float, default=60.0, help="per operation")
    parser.add_argument("--job-budget-seconds", type=float, default=300.0, help="for the 50,000-row job step")
    args = parser.parse_args()
    missing = [n for n in args.candidates if not CANDIDATES[n].server.installed()]
    if missing:
        parser.error(f"not installed: {', '.join(missing)} (make bench-mongo-servers installs every candidate)")
    for size in args.sizes:
        results = {}
        for index, name in enumerate(args.candidates):
            results[name] = run_candidate(
                CANDIDATES[name], size, args.budget_seconds, args.job_budget_seconds, FIRST_PORT + index
            )
        print_table(size, results)


if __name__ == "__main__":
    main()
