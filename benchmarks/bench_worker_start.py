"""CPU a worker pool spends starting: ``ichnaea worker`` started and left idle.

    .venv/bin/python benchmarks/bench_worker_start.py [--processes 2] [--seconds 6]

Starts ``ichnaea worker --processes N`` on empty queues (``--db`` and
``--redis``, whose queues must be empty), waits ``--seconds`` and prints the
CPU seconds of the supervisor and of every descendant (fork server,
resource tracker, worker processes): what a pool costs before it has done
any work, which every load run's worker CPU includes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from load_pipeline import children_of, cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench_pipeline")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    env = {**os.environ, "DB_READWRITE_URI": args.db, "DB_READONLY_URI": args.db,
           "REDIS_URI": args.redis, "LOGGING_LEVEL": "WARNING"}  # fmt: skip
    pool = subprocess.Popen(
        [sys.executable, "-m", "ichnaea", "worker", "--processes", str(args.processes)], env=env
    )
    try:
        time.sleep(args.seconds)
        pids = [pool.pid, *children_of(pool.pid)]
        lines = []
        for pid in pids:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
            lines.append(f"  {pid:>7} {cpu_seconds(pid):5.2f} s  {name}")
        total = sum(cpu_seconds(pid) for pid in pids)
    finally:
        pool.send_signal(signal.SIGTERM)
        pool.wait(60)
    print(f"{total:.2f} CPU s in {len(pids)} processes after {args.seconds:g} s idle")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
