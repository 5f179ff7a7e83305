"""One writer per campaign: an exclusive OS lock on ``DIR/writer.lock``.

Every command that writes a campaign's store (``run``, ``run --resume``, ``finetune``)
takes this lock first, before any model loads; a second writer fails at once with
one line naming the holder. Readers (``status``, ``plot``, ``report``, ``export``,
``check``) never take it: SQLite's WAL lets them read while the writer writes.

The lock is ``flock(2)``, so the kernel drops it when the holder dies, even by
SIGKILL or an out-of-memory kill: a stale lock never blocks a resume. The file
stays behind and records the last holder (pid, host, since when, command); a new
holder simply overwrites it. A held lock is recognised by the failed ``flock``, never
by the file's content, so an old record cannot block anyone.

Network file systems: on Linux, ``flock`` on NFS is emulated with byte-range locks
through the server's lock manager, so it excludes writers on other clients too, as
long as the mount supports locking (not ``nolock`` or ``local_lock=all|flock``). A
client that dies keeps its lock until the server's lease runs out (NFSv4: about
90 s). SQLite's WAL mode needs shared memory on one host, so a campaign on a network
share should only ever be used from one machine at a time anyway.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
import weakref
from pathlib import Path
from typing import Any

from evo.errors import EvoError
from evo.rundir import LOCK_FILE

__all__ = ["LOCK_FILE", "WriterLock"]

# A forked child (vLLM's engine core, a DataLoader worker) shares the locked open file
# description; if the parent were killed, an orphaned child would keep the campaign locked.
# flock is dropped only when the last descriptor closes, so closing the child's copy right
# after fork never unlocks the parent.
_HELD: weakref.WeakSet[WriterLock] = weakref.WeakSet()


def _close_in_child() -> None:
    # the child's lock objects forget the fd too: a later release() or __del__ there must not
    # close whatever the child has since opened under the same number
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


class CampaignLocked(EvoError):
    """Another live process holds the campaign's writer lock."""

    def __init__(self, directory: Path, holder: dict[str, Any] | None) -> None:
        self.holder = holder
        who = describe_holder(holder) if holder else "another process (it has not recorded itself yet)"
        super().__init__(f"{directory} is in use by another writer: {who}; "
                         "wait for it to finish or stop it, then resume")


def describe_holder(holder: dict[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {since}"
            f" ({holder.get('command', '?')})")


class WriterLock:
    """The exclusive writer lock of one campaign directory.

    ``acquire()`` takes it without waiting or raises :class:`CampaignLocked`;
    ``release()`` (or leaving the ``with`` block, or the process dying) gives it back.
    """

    def __init__(self, directory: str | Path, command: str | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.command = command or " ".join(["evo", *sys.argv[1:2]])
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> WriterLock:
        if self._fd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            # Not O_TRUNC: a contender must never wipe the holder's record. os.open makes
            # the fd non-inheritable, so processes we start (sandbox workers) never hold it.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise CampaignLocked(self.directory, holder) from None
            except OSError as exc:
                os.close(fd)
                raise EvoError(f"cannot lock {self.path}: {exc.strerror} (the file system does not "
                               "support flock; keep campaigns on a local disk)") from None
            # The file we locked may have been unlinked by a holder that cleaned up just
            # before (see release(remove=True)); then lock the new file instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        _HELD.add(self)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                  "command": self.command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        return self

    def release(self, remove: bool = False) -> None:
        """Gives the lock back; ``remove`` also deletes the file (for a directory that
        ends up holding nothing else)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        if remove:  # while still holding it: a contender re-checks the inode after locking
            self.path.unlink(missing_ok=True)
        os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *_: Any) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


def _read_holder(fd: int) -> dict[str, Any] | None:
    """The holder's record; it writes it right after locking, so give it a moment."""
    for _ in range(20):
        try:
            data = os.pread(fd, 4096, 0)
            if data.strip():
                return json.loads(data)
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    return None

