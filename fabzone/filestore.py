"""Content-addressed file store: uploads stream to a temp file, are hashed, and land under their sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class TooLarge(Exception):
    """The upload passed the configured size limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file larger than {limit} bytes")
        self.limit = limit


class IncomingFile:
    """A file being received: written chunk by chunk to the store's temp dir, hashed on the way."""

    def __init__(self, directory: Path, limit: int) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self._fh = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.size = 0
        self.limit = limit
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(self.limit)
        self._hash.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> str:
        """Flush to disk and return the sha256 hex digest."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)


class FileStore:
    """Files live at `<root>/<sha[:2]>/<sha>`. The maker's file name never becomes part of a path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def clean_temp(self) -> int:
        """Remove uploads a killed hub left half-written; returns how many."""
        removed = 0
        for leftover in self.tmp.glob("upload-*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def incoming(self, limit: int) -> IncomingFile:
        return IncomingFile(self.tmp, limit)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def commit(self, incoming: IncomingFile, sha256: str) -> Path:
        """Move a finished upload to its content address (atomic rename; same content = same file)."""
        final = self.path_for(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming.path, final)
        return final

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()
