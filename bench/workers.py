"""Benchmark: worker processes side by side, 1 against 2, on PostgreSQL and RabbitMQ (issue 8: 2 workers at
least 1.6x one).

For each worker count (1, then 2): a fresh scratch database ``gateway_bench_workers`` (created, migrated, dropped
at the end; ``GATEWAY_BENCH_POSTGRES_URL`` overrides ``postgresql://gateway:gateway@127.0.0.1:5432/
gateway_bench_workers``; the role needs CREATEDB) and queues of their own on the broker at
``GATEWAY_BENCH_AMQP_URL`` (default the machine's ``amqp://guest:guest@127.0.0.1:5672/%2F``; deleted at the end).

1. ``--payloads`` COPARN interchanges of ``--per-payload`` messages (the generator of ``bench/ingest_e2e.py``:
   every message its own booking and container) are stored as ``received`` through ``Gateway.receive``,
   without notices, so no worker starts early.
2. The workers start: ``python -m gateway run --role worker`` each, the real command, and the run waits until
   each has logged that it consumes its queue.
3. The clock starts, one notice per message is published (what receivers do after each store), and the clock
   stops when the database shows every message ``done``: parsed, validated, mapped, persisted, CONPAS delivery
   queued. No dispatcher runs.

    .venv/bin/python bench/workers.py [--payloads 400] [--per-payload 10]

Prints messages per second for each count and the ratio of 2 to 1 (the peer is the one-worker run, measured in
the same run on the same data). On a machine with two cores the database server, the broker and this script
share them with the workers, which caps what a second worker can add.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pika  # noqa: E402
import yaml  # noqa: E402
from ingest_e2e import create_postgres, drop_postgres, interchange  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from gateway import config as config_mod  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.model import Message  # noqa: E402
from gateway.queues import DELIVERIES, RECEIVED  # noqa: E402

DEFAULT_URL = "postgresql://gateway:gateway@127.0.0.1:5432/gateway_bench_workers"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
GOAL = 1.6  # 2 workers against 1 (issue 8)


def routes(work: Path, url: str, amqp_url: str, prefix: str) -> Path:
    doc = {
        "database": {"url": url},
        "http": {"enabled": False},
        "queues": {"url": amqp_url, "prefix": prefix, "prefetch": 20, "sweep": "60s"},
        "partners": {"ONE": {"name": "Ocean Network Express", "business_type": "ocean_carrier"}},
        "mappings": [
            {"match": {"format": "edifact", "message": "COPARN"}, "use": str(ROOT / "mappings/edifact/coparn.yaml")}
        ],
        "routes": {
            "conpas-prenotice": {
                "on": "container.announced",
                "render": "conpas",
                "to": {"type": "folder", "path": str(work / "outbox")},
            }
        },
    }
    path = work / "routes.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def done(gw: Gateway) -> int:
    with gw.sessions() as s:
        return int(s.scalar(select(func.count()).where(Message.status == "done")) or 0)


def run(workers: int, payloads: int, per_payload: int, url: str, amqp_url: str) -> float:
    """Seconds for ``workers`` worker processes to process every stored payload."""
    create_postgres(url)
    prefix = f"gw-bench-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="gw-bench-workers-") as tmp:
        work = Path(tmp)
        config = routes(work, url, amqp_url, prefix)
        gw = Gateway(config_mod.load(config))
        try:
            ids = [
                gw.receive(
                    interchange(p, per_payload, first=p * per_payload), channel="bench", partner="ONE", wake=False
                ).message_id
                for p in range(payloads)
            ]
            env = {**os.environ, "GATEWAY_CONFIG": str(config), "GATEWAY_LOG_LEVEL": "WARNING"}
            env.pop("GATEWAY_DATABASE_URL", None)
            logs = []
            for i in range(workers):
                log_path = work / f"worker-{i}.log"
                logs.append(log_path)
                with open(log_path, "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "gateway",
                                "--log-json",
                                "--log-level",
                                "INFO",
                                "run",
                                "--role",
                                "worker",
                            ],
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            deadline = time.monotonic() + 60
            while not all('"event": "consuming"' in p.read_text(errors="replace") for p in logs):
                if time.monotonic() > deadline:
                    raise SystemExit("workers did not start:\n" + "\n".join(p.read_text()[-2000:] for p in logs))
                time.sleep(0.1)
            start = time.perf_counter()
            assert gw.queues is not None
            gw.queues.received(ids)
            while done(gw) < payloads:
                time.sleep(0.02)
            return time.perf_counter() - start
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
            gw.close()
            with contextlib.suppress(Exception):
                connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
                channel = connection.channel()
                for kind in (RECEIVED, DELIVERIES):
                    channel.queue_delete(f"{prefix}.{kind}")
                connection.close()
            drop_postgres(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payloads", type=int, default=400)
    parser.add_argument("--per-payload", type=int, default=10)
    args = parser.parse_args()
    url = os.environ.get("GATEWAY_BENCH_POSTGRES_URL", DEFAULT_URL)
    amqp_url = os.environ.get("GATEWAY_BENCH_AMQP_URL", DEFAULT_AMQP)
    messages = args.payloads * args.per_payload
    print(
        f"{args.payloads} COPARN interchanges x {args.per_payload} messages = {messages} messages, PostgreSQL, RabbitMQ"
    )
    print(f"machine: {os.cpu_count()} cores")
    rates = {}
    for workers in (1, 2):
        seconds = run(workers, args.payloads, args.per_payload, url, amqp_url)
        rates[workers] = messages / seconds
        print(f"  {workers} worker process(es): {seconds:7.2f} s  {rates[workers]:8.0f} messages/s")
    ratio = rates[2] / rates[1]
    print(f"2 workers / 1 worker: {ratio:.2f}x (goal {GOAL}x: {'met' if ratio >= GOAL else 'not met'})")


if __name__ == "__main__":
    main()
