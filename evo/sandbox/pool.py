"""Starting warm worker processes (inside bwrap, or bare) and talking to one of them."""

from __future__ import annotations

import json
import os
import queue
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future

from evo.sandbox.bwrap import worker_command

UID_BASE = 1_500_000_000  # evaluations run as a random uid in [UID_BASE, UID_BASE + UID_SPAN)
UID_SPAN = 1 << 24
READY_TIMEOUT_S = 10.0


class WorkerLost(Exception):
    """The worker died or stopped answering; it has been killed and must be replaced."""

    def __init__(self, status: str, error: str):
        super().__init__(error)
        self.status, self.error = status, error


def new_uid() -> int:
    return UID_BASE + secrets.randbelow(UID_SPAN)


def kill_uid(uid: int) -> None:
    """SIGKILL every process running as `uid` (root only): a helper of that uid does kill(-1)."""
    if uid < 0 or os.geteuid() != 0:
        return
    code = "import os, signal; os.kill(-1, signal.SIGKILL)"
    try:
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", code],
            user=uid,
            group=uid,
            extra_groups=[],
            env={},
            timeout=10,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError):
        pass


class _Spawner:
    """Starts processes from one long-lived thread: `bwrap --die-with-parent` and
    PR_SET_PDEATHSIG fire when the *thread* that forked the worker exits, so workers must
    not be started from short-lived threads (e.g. those of run_many)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="evo-sandbox-spawner", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

    def call(self, fn):
        fut: Future = Future()
        self._jobs.put((fn, fut))
        return fut.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.call(
        lambda: subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
    )


def _frame(message: dict) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">I", len(data)) + data


class WorkerProcess:
    """One warm worker. Not thread-safe: the pool hands it to one caller at a time."""

    def __init__(self, mode: str, uid: int, scratch_bytes: int, bwrap: str | None = None) -> None:
        self.mode, self.uid = mode, uid
        self.scratch_root = "/tmp/evo" if mode == "bwrap" else tempfile.mkdtemp(prefix="evo-sbx-")
        if mode != "bwrap":
            os.chmod(self.scratch_root, 0o711)
        scratch = os.path.join(self.scratch_root, "runs")
        argv = worker_command(mode, uid, scratch, scratch_bytes, bwrap)
        self.proc = _spawn(argv, {"PATH": "/usr/bin:/bin"})
        self._fd = self.proc.stdout.fileno()
        self.ready: dict | None = None
        self._buf = bytearray()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def fileno(self) -> int:
        return self._fd

    def read_frames(self) -> list[dict]:
        """Read what the worker sent (call when its stdout is readable); complete messages."""
        chunk = os.read(self.fileno(), 1 << 20)
        if not chunk:
            self.kill()
            raise WorkerLost("killed", "the worker died; it was replaced")
        self._buf += chunk
        frames = []
        while len(self._buf) >= 4:
            size = struct.unpack(">I", self._buf[:4])[0]
            if len(self._buf) < 4 + size:
                break
            frames.append(json.loads(bytes(self._buf[4 : 4 + size])))
            del self._buf[: 4 + size]
        return frames

    def _read_frame(self, deadline: float) -> dict:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerLost("timeout", "the worker did not answer in time; it was replaced")
            readable, _, _ = select.select([self.fileno()], [], [], remaining)
            if readable:
                frames = self.read_frames()
                if frames:
                    self._buf[:0] = b"".join(_frame(f) for f in frames[1:])
                    return frames[0]

    def start(self) -> dict:
        if self.ready is None:
            try:
                self.ready = self._read_frame(time.monotonic() + READY_TIMEOUT_S)
            except WorkerLost as exc:
                raise WorkerLost(
                    "killed", f"the sandbox worker failed to start ({exc.error})"
                ) from None
        return self.ready

    def send(self, job: dict) -> None:
        """Queue a job (the worker takes jobs in order, one at a time)."""
        self.start()
        try:
            self.proc.stdin.write(_frame(job))
            self.proc.stdin.flush()
        except (OSError, ValueError):
            self.kill()
            raise WorkerLost("killed", "the worker died; it was replaced") from None

    def request(self, job: dict, wait_s: float) -> dict:
        self.send(job)
        return self._read_frame(time.monotonic() + wait_s)

    def kill(self) -> None:
        """Kill the worker and everything it started (bwrap: the whole PID namespace)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.kill()
        self.proc.wait()
        if self.mode != "bwrap":
            kill_uid(self.uid)  # evaluations escaped the worker's session; the uid finds them

    def discard(self) -> None:
        """Kill it and release its pipes (only by the caller that holds this worker)."""
        self.kill()
        self._close_files()

    def close(self) -> None:
        """Ask the worker to exit (EOF on its stdin); kill it if it does not."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
            self._close_files()
        except subprocess.TimeoutExpired:
            self.discard()

    def _close_files(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if self.mode != "bwrap":
            shutil.rmtree(self.scratch_root, ignore_errors=True)
