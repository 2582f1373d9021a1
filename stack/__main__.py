"""python -m stack {up,down,stop,status,run}: the embedded local stack (what `make run` and `make down` call)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from confluent_kafka import KafkaException
from pymongo.errors import PyMongoError

from lakehouse import serving
from lakehouse.mongo import serving_db
from lakehouse.settings import cluster_settings, load_settings
from spark_jobs.progress import lag_per_topic
from spark_jobs.supervisor import read_status, status_lines
from speed_layer.consumer import speed_layer_lag
from stack.pipeline import run_pipeline
from stack.services import ALL_SERVICES, CLUSTER_SERVICES, LocalStack, MemorySampler, process_tree_rss


def _status(stack: LocalStack) -> None:
    running = stack.running()
    total = 0
    for name in dict.fromkeys([*ALL_SERVICES, *running]):
        pid = running.get(name)
        rss = process_tree_rss(pid) if pid else 0
        total += rss
        print(f"{name:14} {'pid ' + str(pid) if pid else 'stopped':12} {rss / 2**20:8.0f} MiB")
    print(f"{'total':14} {'':12} {total / 2**20:8.0f} MiB")
    _print_pipeline(stack)


def _print_pipeline(stack: LocalStack) -> None:
    """Lag from the job's own checkpoint (consumer-group tools cannot see Spark's offsets) and freshness; the
    job supervisor's state when the job is not running normally (read from its file: MongoDB may be away)."""
    supervisor = read_status(stack.settings)
    for line in status_lines(supervisor) if supervisor else []:
        print(line)
    try:
        lag = lag_per_topic(stack.settings)
        ahead = speed_layer_lag(stack.settings)
    except KafkaException as error:
        print(f"lag: Kafka unreachable ({error})")
    else:
        shown = ", ".join(f"{topic} {behind:,}" for topic, behind in sorted(lag.items())) if lag is not None else None
        print(f"lag (records not yet processed): {shown or 'no batch committed yet'}")
        print(f"speed layer lag (product records not yet read): {'nothing read yet' if ahead is None else ahead}")
    try:
        db = serving_db(stack.settings, server_selection_timeout_ms=2000)
        age = serving.freshness_seconds(db)
        products = serving.summary(db).get("products", 0)
    except PyMongoError as error:
        print(f"MongoDB unreachable ({error.__class__.__name__})")
        return
    print(f"products served: {products:,}; newest record: {'none' if age is None else f'{age:,.0f} s old'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start services (all by default)")
    up.add_argument("services", nargs="*", help=", ".join(CLUSTER_SERVICES) + " (spark with --cluster only)")
    commands.add_parser("down", help="stop every process the stack started, by pid")
    stop = commands.add_parser("stop", help="stop some services, e.g. `stop job` before a backfill")
    stop.add_argument("services", nargs="+", choices=ALL_SERVICES)
    commands.add_parser("status", help="what runs, with its memory")
    run = commands.add_parser("run", help="start everything, ingest the sample, keep running until Ctrl-C")
    run.add_argument(
        "--exit-after-ingest", action="store_true", help="stop the stack once the sample and its price history are in"
    )
    for command in (up, run):
        command.add_argument(
            "--cluster",
            action="store_true",
            help="three Kafka nodes and a Spark standalone cluster on 127.0.0.1 (README: Running on a cluster)",
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cluster = getattr(args, "cluster", False)
    stack = LocalStack(cluster_settings() if cluster else load_settings(), cluster=cluster)
    if args.command == "up":
        unknown = set(args.services) - set(stack.services)
        if unknown:
            parser.error(f"unknown service(s) {', '.join(sorted(unknown))}; choose from {', '.join(stack.services)}")
        stack.up(args.services or None)
    elif args.command == "down":
        stopped = stack.down()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    elif args.command == "stop":
        stopped = [name for name in args.services if stack.process(name).stop()]
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    elif args.command == "status":
        _status(stack)
    else:
        return _run(stack, args.exit_after_ingest)
    return 0


def _run(stack: LocalStack, exit_after_ingest: bool) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with MemorySampler(stack) as memory:
            ok = run_pipeline(stack)
        print(
            f"memory peak of every process started: {memory.peak / 2**30:.2f} GiB PSS "
            f"({memory.peak_rss / 2**30:.2f} GiB RSS summed)",
            flush=True,
        )
        if exit_after_ingest or not ok:
            return 0 if ok else 1
        print("Running. Ctrl-C (or `make down` in another shell) stops everything.", flush=True)
        while stack.running():
            time.sleep(1)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        print(f"stopped: {', '.join(stack.down()) or 'nothing'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
