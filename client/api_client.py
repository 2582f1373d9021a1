"""Send the Amazon products and categories CSVs to the ingest API.

    python client/api_client.py                                    # dataset/ (Kaggle files) or dataset/sample
    python client/api_client.py --products my.csv --categories cats.csv --api-url http://host:8000

Categories go first (the pipeline does not depend on it). Rows are converted and validated while the
file streams, posted in batches by several workers, and retried with backoff on 429, 503 and connection
errors. The exit code is non-zero when any row was rejected or could not be delivered.

An interrupted run (Ctrl-C, a crash, batches still undelivered) leaves its progress in var/client/; the
next run with the same files resumes there, counting every row once and producing none twice.
`--restart` ignores it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from client.transformer import BadRow, Record, read_categories, read_products
from lakehouse.settings import PROJECT_ROOT, settings

RETRY_STATUSES = frozenset({429, 502, 503, 504})
DATASET_DIR = PROJECT_ROOT / "dataset"


@dataclass
class Summary:
    sent: int = 0
    accepted: int = 0
    rejected: list[str] = field(default_factory=list)
    undelivered: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.undelivered

    def add(self, other: Summary) -> None:
        self.sent += other.sent
        self.accepted += other.accepted
        self.rejected.extend(other.rejected)
        self.undelivered += other.undelivered


def default_input(name: str) -> Path:
    """The real Kaggle file when the user put it in dataset/, else the committed generated sample."""
    kaggle = DATASET_DIR / name
    return kaggle if kaggle.exists() else DATASET_DIR / "sample" / name


@dataclass
class Chunk:
    """Rows [start, end) of one file: the records of one batch and the bad rows read on the way."""

    label: str
    start: int
    end: int
    records: list[Record]
    bad_rows: list[BadRow]

    def body(self) -> bytes:
        return json.dumps([record.data for record in self.records], ensure_ascii=False).encode()

    def outcome(self, accepted: int, rejected: list[str], undelivered: int = 0) -> Summary:
        bad = [f"line {row.line}: {row.reason}" for row in self.bad_rows]
        return Summary(len(self.records) + len(self.bad_rows), accepted, bad + rejected, undelivered)


def chunks(label: str, rows: Iterable[Record | BadRow], size: int, skip: int = 0) -> Iterator[Chunk]:
    """Batches of `size` good records; the first `skip` rows were handled by an interrupted earlier run."""
    records: list[Record] = []
    bad_rows: list[BadRow] = []
    start = position = skip
    for position, row in enumerate(islice(rows, skip, None), start=skip + 1):
        (bad_rows if isinstance(row, BadRow) else records).append(row)  # type: ignore[arg-type]
        if len(records) == size:
            yield Chunk(label, start, position, records, bad_rows)
            records, bad_rows, start = [], [], position
    if records or bad_rows:
        yield Chunk(label, start, position, records, bad_rows)


class ResumeState:
    """What an interrupted run finished, saved after every batch so the next run resumes there.

    Per file, `done` counts the rows of the longest fully answered prefix, and `summary` holds their
    outcome, so a resumed run counts every row once. Batches answered past the prefix are sent again
    with their first Idempotency-Key (run id, file, first row): the API answers them from its key log
    and produces nothing twice.
    """

    def __init__(self, path: Path, inputs: dict[str, Path], batch_size: int) -> None:
        self.path = path
        self.identity = {label: _file_identity(file) for label, file in inputs.items()} | {"batch_size": batch_size}
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.resumed = saved.get("identity") == self.identity
        self.run_id: str = saved["run_id"] if self.resumed else uuid.uuid4().hex
        self.done: dict[str, int] = saved["done"] if self.resumed else dict.fromkeys(inputs, 0)
        self.summary = Summary(**saved["summary"]) if self.resumed else Summary()
        self._answered: dict[tuple[str, int], tuple[int, Summary]] = {}
        self._lock = threading.Lock()

    def idempotency_key(self, chunk: Chunk) -> str:
        return f"{self.run_id}-{chunk.label}-{chunk.start}"

    def record(self, chunk: Chunk, outcome: Summary) -> None:
        if outcome.undelivered:
            return  # not part of any prefix: the next run sends it again
        with self._lock:
            self._answered[(chunk.label, chunk.start)] = (chunk.end, outcome)
            while (chunk.label, self.done[chunk.label]) in self._answered:
                end, folded = self._answered.pop((chunk.label, self.done[chunk.label]))
                self.summary.add(folded)
                self.done[chunk.label] = end
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {"identity": self.identity, "run_id": self.run_id, "done": self.done, "summary": asdict(self.summary)}
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        partial.replace(self.path)

    def finish(self, summary: Summary) -> None:
        """Forget the state once nothing is left to deliver; keep it for a resume otherwise."""
        if not summary.undelivered:
            self.path.unlink(missing_ok=True)


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def default_state_path(products: Path, categories: Path | None, api_url: str) -> Path:
    categories_part = categories.resolve() if categories else ""
    digest = hashlib.sha256(f"{products.resolve()}|{categories_part}|{api_url}".encode()).hexdigest()[:16]
    return settings.runtime_dir / "client" / f"{digest}.json"


class IngestClient:
    def __init__(self, api_url: str, api_key: str = "", attempts: int = 8, timeout_s: float = 30.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=api_url, headers=headers, timeout=timeout_s)
        self.attempts = attempts

    def post_batch(self, path: str, chunk: Chunk, idempotency_key: str) -> Summary:
        """Post one batch and return its outcome. Raises after the last failed attempt."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        body = chunk.body()
        for attempt in range(self.attempts):
            try:
                response = self.http.post(path, content=body, headers=headers)
            except httpx.TransportError:
                if attempt + 1 == self.attempts:
                    raise
                time.sleep(_backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < self.attempts:
                time.sleep(float(response.headers.get("Retry-After") or _backoff(attempt)))
                continue
            if response.status_code == 422:
                return chunk.outcome(0, _rejections(response.json().get("detail"), chunk.records))
            response.raise_for_status()
            return chunk.outcome(response.json()["accepted"], [])
        raise RuntimeError("unreachable")

    def close(self) -> None:
        self.http.close()


def _backoff(attempt: int) -> float:
    return min(2**attempt * 0.25, 10)


def _rejections(detail: Any, records: list[Record]) -> list[str]:
    if not isinstance(detail, list):
        return [f"lines {records[0].line}-{records[-1].line}: {detail}"]
    return [
        f"line {records[e['index']].line}: {e.get('field')}: {e.get('message')}"
        if isinstance(e.get("index"), int)
        else str(e)
        for e in detail
    ]


def send_file(
    client: IngestClient,
    path: str,
    batches: Iterable[Chunk],
    state: ResumeState,
    workers: int,
    progress: tqdm,
) -> Summary:
    """Post the batches with `workers` in flight; returns this run's outcome for them."""
    summary = Summary()
    pending: dict[Future[Summary], Chunk] = {}

    def collect(done: Iterable[Future[Summary]]) -> None:
        for future in done:
            chunk = pending.pop(future)
            if chunk.records:
                try:
                    outcome = future.result()
                except (httpx.HTTPError, RuntimeError) as error:
                    reason = f"lines {chunk.records[0].line}-{chunk.records[-1].line}: not delivered: {error}"
                    outcome = chunk.outcome(0, [reason], undelivered=len(chunk.records))
            else:
                outcome = chunk.outcome(0, [])
            state.record(chunk, outcome)
            summary.add(outcome)
            progress.update(outcome.sent)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in batches:
            if chunk.records:
                pending[pool.submit(client.post_batch, path, chunk, state.idempotency_key(chunk))] = chunk
            else:
                pending[_done_future()] = chunk
            if len(pending) >= workers * 2:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        collect(list(pending))
    return summary


def _done_future() -> Future[Summary]:
    future: Future[Summary] = Future()
    future.set_result(Summary())
    return future


def run(
    products: Path,
    categories: Path | None,
    api_url: str,
    api_key: str = "",
    batch_size: int = 1000,
    workers: int = 4,
    show_progress: bool = True,
    state_path: Path | None = None,
) -> Summary:
    """Send both files (only the products when `categories` is None, as for a day of price updates) and return
    the outcome of every row, including rows an interrupted run handled."""
    inputs = {"categories": categories, "products": products} if categories else {"products": products}
    state = ResumeState(state_path or default_state_path(products, categories, api_url), inputs, batch_size)
    if state.resumed:
        print(f"resuming an interrupted run: {state.done} rows already handled", file=sys.stderr)
    summary = Summary()
    summary.add(state.summary)
    sends: list[tuple[str, str, Iterator[Record | BadRow]]] = [("products", "/products/batch", read_products(products))]
    if categories:
        sends.insert(0, ("categories", "/categories/batch", read_categories(categories)))
    client = IngestClient(api_url, api_key)
    try:
        for label, path, rows in sends:
            skip = state.done[label]
            with tqdm(desc=label, unit=" records", disable=not show_progress, file=sys.stderr, initial=skip) as bar:
                summary.add(send_file(client, path, chunks(label, rows, batch_size, skip), state, workers, bar))
    finally:
        client.close()
    state.finish(summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=Path, default=default_input("amazon_products.csv"))
    parser.add_argument("--categories", type=Path, default=default_input("amazon_categories.csv"))
    parser.add_argument("--api-url", default=settings.api_url)
    parser.add_argument("--api-key", default=settings.api_key)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--restart", action="store_true", help="ignore the progress of an interrupted run")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.restart:
        default_state_path(args.products, args.categories, args.api_url).unlink(missing_ok=True)
    summary = run(
        args.products,
        args.categories,
        args.api_url,
        args.api_key,
        args.batch_size,
        args.workers,
        show_progress=not args.no_progress,
    )
    seconds = time.monotonic() - started
    for reason in summary.rejected[:20]:
        print(f"rejected: {reason}", file=sys.stderr)
    if len(summary.rejected) > 20:
        print(f"... and {len(summary.rejected) - 20} more rejections", file=sys.stderr)
    print(
        f"sent {summary.sent}, accepted {summary.accepted}, rejected {len(summary.rejected)}, "
        f"undelivered {summary.undelivered}, in {seconds:.1f}s "
        f"({summary.sent / seconds if seconds else 0:,.0f} records/s)"
    )
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
