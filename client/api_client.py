"""Send the Amazon products and categories CSVs to the ingest API.

    python client/api_client.py                                    # dataset/ (Kaggle files) or dataset/sample
    python client/api_client.py --products my.csv --categories cats.csv --api-url http://host:8000

Categories go first (the pipeline does not depend on it). Rows are converted and validated while the
file streams, posted in batches by several workers, and retried with backoff on 429, 503 and connection
errors. The exit code is non-zero when any row was rejected or could not be delivered.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
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


def default_input(name: str) -> Path:
    """The real Kaggle file when the user put it in dataset/, else the committed generated sample."""
    kaggle = DATASET_DIR / name
    return kaggle if kaggle.exists() else DATASET_DIR / "sample" / name


class IngestClient:
    def __init__(self, api_url: str, api_key: str = "", attempts: int = 8, timeout_s: float = 30.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=api_url, headers=headers, timeout=timeout_s)
        self.attempts = attempts

    def post_batch(self, path: str, records: list[Record]) -> tuple[int, list[str]]:
        """Post one batch; returns (accepted, rejection reasons). Raises after the last failed attempt."""
        body = [record.data for record in records]
        for attempt in range(self.attempts):
            try:
                response = self.http.post(path, json=body)
            except httpx.TransportError:
                if attempt + 1 == self.attempts:
                    raise
                time.sleep(min(2**attempt * 0.25, 10))
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < self.attempts:
                time.sleep(float(response.headers.get("Retry-After") or min(2**attempt * 0.25, 10)))
                continue
            if response.status_code == 422:
                return 0, _rejections(response.json().get("detail"), records)
            response.raise_for_status()
            return response.json()["accepted"], []
        raise RuntimeError("unreachable")

    def close(self) -> None:
        self.http.close()


def _rejections(detail: Any, records: list[Record]) -> list[str]:
    if not isinstance(detail, list):
        return [f"lines {records[0].line}-{records[-1].line}: {detail}"]
    return [
        f"line {records[e['index']].line}: {e.get('field')}: {e.get('message')}"
        if isinstance(e.get("index"), int)
        else str(e)
        for e in detail
    ]


def batched(items: Iterable[Record | BadRow], size: int, summary: Summary) -> Iterator[list[Record]]:
    """Groups good records into batches; bad rows are counted as rejected on the way."""

    def good() -> Iterator[Record]:
        for item in items:
            if isinstance(item, BadRow):
                summary.sent += 1
                summary.rejected.append(f"line {item.line}: {item.reason}")
            else:
                yield item

    iterator = good()
    while batch := list(islice(iterator, size)):
        yield batch


def send_file(
    client: IngestClient,
    path: str,
    rows: Iterable[Record | BadRow],
    summary: Summary,
    batch_size: int,
    workers: int,
    progress: tqdm,
) -> None:
    pending: dict[Future[tuple[int, list[str]]], list[Record]] = {}

    def collect(done: Iterable[Future[tuple[int, list[str]]]]) -> None:
        for future in done:
            batch = pending.pop(future)
            try:
                accepted, rejected = future.result()
            except (httpx.HTTPError, RuntimeError) as error:
                summary.undelivered += len(batch)
                summary.rejected.append(f"lines {batch[0].line}-{batch[-1].line}: not delivered: {error}")
                continue
            summary.accepted += accepted
            summary.rejected.extend(rejected)
            progress.update(len(batch))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in batched(rows, batch_size, summary):
            summary.sent += len(batch)
            pending[pool.submit(client.post_batch, path, batch)] = batch
            if len(pending) >= workers * 2:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        collect(list(pending))


def run(
    products: Path,
    categories: Path,
    api_url: str,
    api_key: str = "",
    batch_size: int = 1000,
    workers: int = 4,
    show_progress: bool = True,
) -> Summary:
    summary = Summary()
    client = IngestClient(api_url, api_key)
    try:
        for label, path, rows in (
            ("categories", "/categories/batch", read_categories(categories)),
            ("products", "/products/batch", read_products(products)),
        ):
            with tqdm(desc=label, unit=" records", disable=not show_progress, file=sys.stderr) as progress:
                send_file(client, path, rows, summary, batch_size, workers, progress)
    finally:
        client.close()
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
    args = parser.parse_args(argv)
    started = time.monotonic()
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
