"""How much of its machine a process's copies of databases may use.

- Live followers (`litestream restore -f` processes) from the memory the process has: in Lambda
  `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (the function's MemorySize), elsewhere the machine's memory.
  A follower costs about 9 MB of its own (measured: PSS of an idle follower; its ~46 MB RSS is
  mostly the static binary's text, shared by every follower), so 16 MB each leaves headroom
  for applying transactions; RESERVED_MB stays for Python (~85 MB PSS measured with its first
  follower), SQLite's caches, answers (up to 6 MB in Lambda) and a restore in progress (a 1 GB
  restore peaked at ~110 MB more). 1,769 MB (the template's) allows 94 followers, 512 MB 16.
- Local bytes from the size of the data directory's file system: in Lambda that is /tmp, the
  function's EphemeralStorage (512 MB to 10 GB). A tenth of it (at least 64 MB) stays free for
  SQLite's temporary files and the writer's WAL.

The `replica_max_followers` and `replica_max_local_mb` settings override either (0: derive).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
FOLLOWER_MB = 16
RESERVED_MB = 256
MIN_FOLLOWERS, MAX_FOLLOWERS = 2, 256
DISK_RESERVE_MIN = 64 * MB
# Restored copies up to this size are checked with PRAGMA integrity_check (the full check,
# which also matches every index against its table); larger ones with quick_check, whose cost
# grows with the file only. Measured here: 200 MB took 0.2 s (quick) and 0.3 s (full) from the
# page cache; indexes make the full check dearer.
FULL_CHECK_BYTES = 256 * MB


@dataclass(frozen=True)
class Limits:
    followers: int  # live follower processes at most
    local_bytes: int  # bytes of copies in the data directory at most
    memory_mb: int  # what `followers` was derived from
    disk_bytes: int  # the data directory's file system, in all

    @classmethod
    def of(cls, data_dir: Path, environ: Mapping[str, str] | None = None, *,
           followers: int = 0, local_mb: int = 0) -> Limits:
        env = os.environ if environ is None else environ
        memory_mb = _int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")) or physical_memory_mb()
        derived = (memory_mb - RESERVED_MB) // FOLLOWER_MB
        disk = disk_size(data_dir)
        local = disk - max(disk // 10, DISK_RESERVE_MIN)
        return cls(
            followers=followers or max(MIN_FOLLOWERS, min(MAX_FOLLOWERS, derived)),
            local_bytes=local_mb * MB if local_mb else max(local, 0),
            memory_mb=memory_mb,
            disk_bytes=disk,
        )

    def describe(self) -> str:
        return (f"at most {self.followers} live followers (for {self.memory_mb} MB of memory) and "
                f"{self.local_bytes / MB:.0f} MB of copies (of {self.disk_bytes / MB:.0f} MB local storage)")


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def physical_memory_mb() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MB
    except (OSError, ValueError):
        return 1024


def disk_size(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_blocks * st.f_frsize


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def bytes_of(path: Path) -> int:
    """Bytes a copy takes on disk: the file and its SQLite and Litestream companions."""
    total = 0
    for suffix in ("", "-wal", "-shm", "-journal", "-txid", ".tmp"):
        try:
            total += os.stat(f"{path}{suffix}").st_blocks * 512
        except OSError:
            pass
    for meta in (path.parent / f".{path.name}-litestream", Path(f"{path}-litestream")):
        if meta.is_dir():
            for root, _, files in os.walk(meta):
                for name in files:
                    try:
                        total += os.stat(os.path.join(root, name)).st_blocks * 512
                    except OSError:
                        pass
    return total
