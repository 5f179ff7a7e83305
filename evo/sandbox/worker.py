"""The warm worker: runs inside the isolation (bwrap namespaces, or bare rlimits).

Started as a script (``python -I worker.py UID SCRATCH``), stdlib only. It reads jobs
from its stdin and answers on its stdout, each message a 4-byte big-endian length and
UTF-8 JSON. Per job it forks a child that gets its own session, rlimits, a fresh
scratch directory and a private uid, runs the code and writes the result to a private
pipe. Afterwards the worker kills every process of that uid and reaps everything (it
is a child subreaper, so detached grandchildren come back to it), then answers.
"""

import gc
import importlib.util
import json
import os
import select
import shutil
import signal
import stat
import struct
import sys
import time


def _load_child():
    """Import child.py (a sibling file) under a name generated code will not collide with."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
    spec = importlib.util.spec_from_file_location("_evo_sandbox_child", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_child = _load_child()
PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG = _child.PR_SET_CHILD_SUBREAPER, _child.PR_SET_PDEATHSIG
SETUP_FAILED, _libc = _child.SETUP_FAILED, _child._libc
describe, prctl, run_child = _child.describe, _child.prctl, _child.run_child
prepare_worker = _child.prepare_worker
_exit = os._exit
CLONE_NEWNET = 0x40000000
RESULT_CAP = 8 << 20  # bytes of JSON the result channel accepts


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (atomically, via a helper that becomes that uid)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)  # all processes of this uid except the caller
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _descendants() -> list[int]:
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(name))
    found, todo = [], [os.getpid()]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _reap_all(uid: int, grace_s: float = 2.0) -> None:
    """Kill and reap every descendant; afterwards the worker has no children at all."""
    deadline = time.monotonic() + grace_s
    killed_uid = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        if uid >= 0 and not killed_uid:
            _kill_uid(uid)
            killed_uid = True
            continue
        for pid in _descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.001)


def _reset_scratch(scratch: str, uid: int) -> None:
    """Make `scratch` an empty 0700 directory owned by `uid`; reuse it when it already is."""
    owner = uid if uid >= 0 else os.getuid()
    try:
        st = os.lstat(scratch)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == owner and stat.S_IMODE(st.st_mode) == 0o700:
            if not os.listdir(scratch):
                return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            os.unlink(scratch)
    except FileNotFoundError:
        pass
    os.mkdir(scratch, 0o700)
    os.chown(scratch, owner, owner)


def evaluate(job: dict, uid: int, scratch: str) -> dict:
    out_cap, timeout = job["max_output_bytes"], job["timeout_s"]
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    r_res, w_res = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    token = os.urandom(16).hex().encode()  # a result must start with it
    gc.freeze()  # children never scan (and so never copy) the worker's objects
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            run_child(job, scratch, uid, (w_out, w_err, w_res), token)
        finally:
            _exit(SETUP_FAILED)  # bound at import: the program may have patched os._exit
    for fd in (w_out, w_err, w_res):
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    bufs = {r_out: bytearray(), r_err: bytearray(), r_res: bytearray()}
    caps = {r_out: out_cap, r_err: out_cap, r_res: RESULT_CAP}
    poller = select.poll()
    for fd in (r_out, r_err, r_res, pidfd):
        poller.register(fd, select.POLLIN)
    status = error = None
    exited = False
    while not exited and status is None:
        remaining = start + timeout - time.monotonic()
        if remaining <= 0:
            status, error = "timeout", f"exceeded the {timeout:g} s time limit"
            break
        for fd, _ in poller.poll(remaining * 1000):
            if fd == pidfd:
                exited = True
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
            bufs[fd] += chunk
            if len(bufs[fd]) > caps[fd]:
                status = "output-limit"
                error = "result too large" if fd == r_res else "output exceeded the limit"
    if exited:  # collect what is already buffered in the pipes; writers may live on
        for fd in (r_out, r_err, r_res):
            os.set_blocking(fd, False)
            try:
                while len(bufs[fd]) <= caps[fd] and (chunk := os.read(fd, 65536)):
                    bufs[fd] += chunk
            except BlockingIOError:
                pass
    else:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
    _, wstatus, rusage = os.wait4(pid, 0)
    duration = time.monotonic() - start
    _reap_all(uid)
    for fd in (r_out, r_err, r_res, pidfd):
        os.close(fd)
    _reset_scratch(scratch, uid)
    sig = os.WTERMSIG(wstatus) if os.WIFSIGNALED(wstatus) else 0
    returncode = -sig if sig else os.WEXITSTATUS(wstatus)
    value = None
    if status is None:
        status, error, value = _classify(bytes(bufs[r_res]), token, sig, returncode, rusage, job)
    return {
        "status": status,
        "returncode": returncode,
        "stdout": bytes(bufs[r_out][:out_cap]).decode("utf-8", "replace"),
        "stderr": bytes(bufs[r_err][:out_cap]).decode("utf-8", "replace"),
        "duration_s": duration,
        "value": value,
        "error": error,
    }


def _classify(raw: bytes, token: bytes, sig: int, returncode: int, rusage, job: dict) -> tuple:
    if raw:
        if not raw.startswith(token):
            return "failed", "forged or malformed result on the result channel", None
        raw = raw[len(token) :]
        try:
            result = json.loads(raw)
            if result.get("ok") is True:
                return "ok", None, result.get("value")
            kind = "memory" if result.get("kind") == "memory" else "failed"
            return kind, str(result.get("error")), None
        except Exception:
            return "failed", "malformed result on the result channel", None
    if sig == signal.SIGXCPU:
        return "timeout", "exceeded the CPU time limit", None
    if sig:
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        if rusage.ru_maxrss * 1024 >= 0.9 * (job["memory_mb"] << 20):
            return "memory", f"killed by {name} at the memory limit", None
        return "killed", f"killed by {name}", None
    if returncode == SETUP_FAILED:
        return "failed", "sandbox setup failed", None
    return "failed", f"exited without a result (exit code {returncode})", None


def _send(fd: int, message: dict) -> None:
    data = json.dumps(message).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _recv_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def main() -> None:
    uid, scratch_root, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stray prints of the worker go to stderr, never into the protocol
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    net_isolated = mode == "bwrap"
    _child.DIE_WITH_WORKER = mode != "bwrap"
    if mode != "bwrap":
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        net_isolated = _libc.unshare(CLONE_NEWNET) == 0  # best effort; needs root
    os.makedirs(scratch_root, mode=0o711, exist_ok=True)
    scratch = os.path.join(scratch_root, "run")
    _reset_scratch(scratch, uid)
    prepare_worker(scratch)
    gc.collect()
    _send(proto_out, {"ready": True, "pid": os.getpid(), "net_isolated": net_isolated})
    counter = 0
    while True:
        header = _recv_exact(proto_in, 4)
        if header is None:
            return
        body = _recv_exact(proto_in, struct.unpack(">I", header)[0])
        if body is None:
            return
        counter += 1
        if counter % 1000 == 0:  # frozen objects are never collected: sweep now and then
            gc.unfreeze()
            gc.collect()
        try:
            reply = evaluate(json.loads(body), uid, scratch)
        except Exception as exc:  # a bug in here must not take the worker down
            _reap_all(uid)
            reply = {
                "status": "killed",
                "returncode": None,
                "stdout": "",
                "stderr": "",
                "duration_s": 0.0,
                "value": None,
                "error": f"worker error: {describe(exc)}",
            }
        try:
            _send(proto_out, reply)
        except (TypeError, ValueError):
            reply.update(status="failed", value=None, error="result is not JSON-serializable")
            _send(proto_out, reply)


if __name__ == "__main__":
    main()
