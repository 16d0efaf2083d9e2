"""Speed figure for the validator: `python -m tests.validation.bench_scan [MB]` (not a test)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from drivers.profiles import all_profiles
from fabzone.validation import scan_file
from tests.validation.samples import big_file


def main() -> None:
    mb = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.gcode"
        big_file(path, int(mb * 1e6))
        profiles = list(all_profiles().values())
        for label, given in (("reference estimate only", []), (f"{len(profiles)} profiles", profiles)):
            t0, c0 = time.perf_counter(), time.process_time()
            facts = scan_file(path, profiles=given)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"{label}: {facts.file_lines:,} lines, {facts.file_bytes / 1e6:.1f} MB in {dt:.2f} s "
                f"({cpu:.2f} s CPU) = {facts.file_lines / dt:,.0f} lines/s "
                f"({facts.file_lines / cpu:,.0f} per CPU second), {facts.file_bytes / 1e6 / dt:.1f} MB/s"
            )


if __name__ == "__main__":
    main()
