"""Benchmark: parse and validate the same generated COPARN interchange with pydifact and with the gateway's engine.

pydifact builds its Interchange and runs its own validate(); the engine tokenizes, checks every envelope count
and reference, and validates every message against edifact/D95B/COPARN.yaml (structure and elements).

    .venv/bin/python bench/edifact_parse.py [--messages 5000] [--big-mb 200]

Prints each reader's throughput (MB/s, messages/s), the ratio engine/pydifact measured in this run, and the
peak memory of the engine streaming a --big-mb interchange from disk (each reader runs in its own child process
so that peak RSS is its own). A benchmark, not a test: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = "UNA:+.? '\nUNB+UNOA:2+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+BENCH1'\n"
MESSAGE = (
    "UNH+{n}+COPARN:D:95B:UN:SMDG16'\nBGM+126+BKG{n:07d}+9'\nRFF+BN:ONEYTYO{n:07d}'\n"
    "TDT+20+012E+1++ONEY:172:20+++JD7712:103::ONE APUS'\nLOC+9+JPTYO:139:6'\nLOC+11+USLAX:139:6'\n"
    "DTM+133:202612011800:203'\nNAD+CA+ONEY:160:20'\nEQD+CN+CSQU3054383+45G1:102:5++2+5'\nRFF+BN:ONEYTYO{n:07d}'\n"
    "MEA+AAE+G+KGM:24500'\nMEA+AAE+VGM+KGM:28350'\nSEL+SL{n:06d}+CA'\nFTX+AAA+++AUTO PARTS?: SPARE'\nCNT+16:1'\n"
    "UNT+16+{n}'\n"
)


def write_interchange(path: Path, *, messages: int | None = None, size_mb: int | None = None) -> int:
    """Write a COPARN interchange to ``path`` without holding it in memory; returns its message count."""
    limit = (size_mb or 0) * 1_000_000
    n = 0
    with open(path, "w", encoding="ascii") as fh:
        fh.write(HEADER)
        written = len(HEADER)
        while (messages is not None and n < messages) or (messages is None and written < limit):
            n += 1
            chunk = MESSAGE.format(n=n)
            fh.write(chunk)
            written += len(chunk)
        fh.write(f"UNZ+{n}+BENCH1'\n")
    return n


def child(reader: str, path: str) -> None:
    """Run one reader over ``path`` and print its timing and peak RSS as JSON."""
    import warnings

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    if reader == "pydifact":
        from pydifact.segmentcollection import Interchange

        interchange = Interchange.from_str(Path(path).read_text(encoding="latin-1"))
        interchange.validate()  # pydifact's own check: envelope header and footer
        messages = sum(1 for _ in interchange.get_messages())
    else:
        from gateway.edifact.definitions import load
        from gateway.edifact.envelope import Reader
        from gateway.edifact.tokenizer import Tokenizer
        from gateway.edifact.validator import validate

        load()  # the definitions are read once per process, as in the gateway
        start = time.perf_counter()
        with open(path, "rb") as fh:
            reader_ = Reader(Tokenizer(fh))
            messages = 0
            for msg in reader_:
                if msg.errors or validate(msg):
                    raise SystemExit(f"unexpected error in message {msg.number}")
                messages += 1
            if any(i.errors for i in reader_.interchanges):
                raise SystemExit("unexpected interchange error")
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "messages": messages, "peak_rss_mb": peak_kb / 1024}))


def run_child(reader: str, path: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def baseline_rss() -> float:
    code = "import resource, gateway.edifact.envelope; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="messages in the interchange both readers parse")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the interchange for the memory run (0: skip)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "coparn.edi"
        count = write_interchange(path, messages=args.messages)
        size_mb = path.stat().st_size / 1e6
        print(f"interchange: {count} COPARN messages, {size_mb:.1f} MB")
        results = {name: run_child(name, path) for name in ("pydifact", "engine")}
        for name, r in results.items():
            print(
                f"  {name:9} {r['seconds']:7.2f} s  {size_mb / r['seconds']:6.2f} MB/s  "
                f"{r['messages'] / r['seconds']:9.0f} messages/s  peak RSS {r['peak_rss_mb']:.0f} MB"
            )
        ratio = results["pydifact"]["seconds"] / results["engine"]["seconds"]
        print(f"throughput ratio engine/pydifact: {ratio:.1f}x (goal: at least 10x)")
        if args.big_mb:
            big = Path(tmp) / "big.edi"
            n = write_interchange(big, size_mb=args.big_mb)
            base = baseline_rss()
            r = run_child("engine", big)
            print(
                f"memory: engine streamed {big.stat().st_size / 1e6:.0f} MB ({n} messages) in {r['seconds']:.1f} s, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['peak_rss_mb'] - base:.0f} MB above the {base:.0f} MB "
                "baseline (goal: under 100 MB)"
            )


if __name__ == "__main__":
    main()
