"""`make bench`: run every benchmark module and write one table into BENCHMARKS.md.

Each module exposes `run() -> list[dict]` with keys: name, value, unit, target (text), ok (bool|None),
note. Figures are measured side by side in one run on this machine; ratios beat absolute numbers.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

MODULES = ["bench.engine_bench", "bench.store_bench", "bench.quality_bench", "bench.train_bench",
           "bench.emulator_bench", "bench.console_bench"]


def _machine() -> str:
    mem = ""
    try:
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def _row(r: dict) -> str:
    ok = {True: "yes", False: "**no**", None: "–"}[r.get("ok")]
    return f"| {r['name']} | {r['value']} | {r.get('unit', '')} | {r.get('target', '')} | {ok} | {r.get('note', '')} |"


def main(selected: list[str]) -> int:
    rows, failures = [], []
    for name in selected or MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        print(f"== {name}", flush=True)
        try:
            for r in module.run():
                print(f"   {r['name']}: {r['value']} {r.get('unit', '')} (target {r.get('target', '-')})", flush=True)
                rows.append(r)
        except Exception:  # a broken benchmark must not hide the others
            failures.append(name)
            traceback.print_exc()
    header = (f"# Benchmarks\n\nWritten by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"machine: {_machine()}.\nOne run, side by side; the machine is shared and noisy, so compare ratios.\n\n"
              "| benchmark | value | unit | target | met | note |\n|---|---:|---|---|---|---|\n")
    Path("BENCHMARKS.md").write_text(header + "\n".join(_row(r) for r in rows) + "\n")
    print(f"wrote BENCHMARKS.md ({len(rows)} rows)")
    if failures:
        print(f"benchmarks that crashed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
