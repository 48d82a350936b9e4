"""Long fuzz run of the EDIFACT engine: any bytes, and mutations of real interchanges, never crash it.

    .venv/bin/python -m tests.fuzz.fuzz_edifact --minutes 10

Every input must give a result or a coded GatewayError; anything else is a crash, printed with the input that
caused it (and the run exits 1). Not part of the pytest run, which has the short property tests instead.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback
from pathlib import Path

from gateway.edifact.contrl import MessageReport, build
from gateway.edifact.envelope import read_all
from gateway.edifact.validator import validate
from gateway.errors import GatewayError

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [ROOT / "mappings/edifact/examples/coparn-d95b-two-messages.edi", *sorted((ROOT / "samples").glob("*.edi"))]
CORPUS = ROOT.parent / "shared" / "corpus"
if CORPUS.is_dir():
    SEEDS += sorted(
        p for p in CORPUS.rglob("*") if p.suffix.lower() in (".edi", ".txt", ".itc") and p.stat().st_size < 100_000
    )
SERVICE = b"'+:?*\n\r UNAUNBUNHUNTUNZUNGUNE0123456789"


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 10)):
        choice = rng.random()
        if not buf or choice < 0.2:
            buf.insert(rng.randrange(len(buf) + 1), rng.choice(SERVICE))
        elif choice < 0.5:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice < 0.7:
            del buf[rng.randrange(len(buf))]
        elif choice < 0.85:
            start = rng.randrange(len(buf))
            buf[start:start] = buf[start : start + rng.randint(1, 40)]
        else:
            buf = buf[: rng.randrange(len(buf) + 1)]
    return bytes(buf)


def one(data: bytes) -> None:
    try:
        interchanges, messages = read_all(data, allow_bare=True)
    except GatewayError:
        return
    reports = [MessageReport(m, validate(m) or []) for m in messages]
    for inter in interchanges:
        build(
            inter,
            [r for r in reports if r.message.interchange is inter],
            reference="F",
            now=__import__("datetime").datetime(2026, 1, 1),
        )


class Hang(Exception):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise Hang


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seeds = [p.read_bytes() for p in SEEDS]
    deadline = time.monotonic() + args.minutes * 60
    runs = 0
    while time.monotonic() < deadline:
        data = mutate(rng.choice(seeds), rng) if rng.random() < 0.9 else rng.randbytes(rng.randint(0, 300))
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(5)  # an input that takes this long is a hang, reported like a crash
        try:
            one(data)
        except (Exception, Hang):
            print(f"CRASH or HANG after {runs} inputs (seed {args.seed}): {data[:400]!r}")
            traceback.print_exc()
            sys.exit(1)
        finally:
            signal.alarm(0)
        runs += 1
    print(f"no crash in {runs} inputs over {args.minutes:g} minutes (seed {args.seed}, {len(seeds)} seed files)")


if __name__ == "__main__":
    main()
