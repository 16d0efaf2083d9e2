"""The scan streams: memory stays flat however big the file (the hub validates 100 MB uploads)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from fabzone.validation.reader import Reader
from fabzone.validation.scan import _Scanner
from tests.validation.samples import big_file


def test_scan_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.gcode"
    big_file(path, 1_500_000)
    # Small blocks, so that a small file (tracemalloc is slow) already spans many of them.
    reader = Reader(path, block_bytes=64 * 1024)
    scanner = _Scanner([])
    tracemalloc.start()
    try:
        scanner.run(reader)
        facts = scanner.facts(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts.file_bytes >= 1_500_000 and facts.file_reasons == []
    # A block, its lines and the bounded facts: a fraction of the file.
    assert peak < facts.file_bytes / 2, peak
