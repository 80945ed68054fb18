"""Run one untrusted command so that nothing it starts outlives it or reaches the grader.

Three levels, the strongest this machine allows (:func:`isolation`):

* ``"separate user"`` (the grader runs as root, Linux ``unshare`` and ``setpriv`` present): the
  command runs as the unprivileged user ``nobody`` in its own PID and mount namespaces. It cannot
  write the grader's files, the installed package or other submissions, cannot see or signal the
  grader's processes, and every process it starts dies with it.
* ``"namespaces"`` (unprivileged user namespaces allowed): its own user, PID and mount namespaces.
  It cannot see or signal processes outside and all its processes die with it, but it runs as the
  grader's user on the file system (the grader restores its own files afterwards, see
  :mod:`ddim_edu.course.grading`).
* ``"process group"`` (anything else, e.g. macOS): its own session; the session, and any process
  still carrying the run's token in its environment, is killed at the end. A determined submission
  can escape this one: for exams, grade inside a container (README, "Classroom mode").

The wall-clock limit covers the whole command; at the limit everything it started is killed.
"""
from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
TOKEN_VAR = "DDIM_EDU_SANDBOX_TOKEN"
LEVELS = ("separate user", "namespaces", "process group")
MAX_FILE_BYTES = 512 * 2 ** 20


@dataclass
class RunResult:
    """How the sandboxed command ended: its exit code (None when killed at the limit)."""
    returncode: int | None
    timed_out: bool
    seconds: float
    isolation: str


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_PROBE = [sys.executable, "-c", "import torch, IPython, nbformat"]


@functools.lru_cache(maxsize=None)
def isolation() -> str:
    """The strongest level of :data:`LEVELS` that works here (cached): each is tried by running
    this Python under it and importing what a graded notebook needs. (``"separate user"`` fails,
    for one, when Python is installed in a folder other users cannot read, such as root's home.)"""
    if shutil.which("unshare") and shutil.which("setpriv") and hasattr(os, "geteuid") and os.geteuid() == 0 \
            and _works(_wrap(_PROBE, "separate user")):
        return "separate user"
    if shutil.which("unshare") and _works(_wrap(_PROBE, "namespaces")):
        return "namespaces"
    return "process group"


def _wrap(argv: list[str], level: str) -> list[str]:
    if level == "separate user":
        return [shutil.which("unshare"), "--pid", "--fork", "--kill-child", "--mount-proc",
                shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]
    if level == "namespaces":
        return [shutil.which("unshare"), "--user", "--map-root-user", "--pid", "--fork", "--kill-child",
                "--mount-proc", "--", *argv]
    return list(argv)


def hand_over(folder: Path, level: str) -> None:
    """Give the sandbox's own folder to the user it runs as (only for ``"separate user"``)."""
    if level != "separate user":
        return
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, NOBODY, NOBODY, follow_symlinks=False)


def _limits() -> None:
    """In the child before it starts: no file it writes may grow past :data:`MAX_FILE_BYTES`."""
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))


def _kill_strays(token: str) -> None:
    """Kill every process whose environment still carries ``token`` (Linux /proc only)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    needle = f"{TOKEN_VAR}={token}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def run(argv: list[str], cwd: Path, env: dict, timeout: float, level: str | None = None,
        log: Path | None = None) -> RunResult:
    """Run ``argv`` in ``cwd`` with exactly ``env`` under isolation ``level`` (default: the
    strongest available) for at most ``timeout`` seconds, its output to ``log`` (a file the
    grader opens); kill everything it started at the end."""
    level = level or isolation()
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    token = secrets.token_hex(16)
    env = {**env, TOKEN_VAR: token}
    start = time.monotonic()
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(_wrap(argv, level), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_limits)
    finally:
        if log:
            out.close()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.kill()
        proc.wait()
        _kill_strays(token)
    return RunResult(None if timed_out else proc.returncode, timed_out, time.monotonic() - start, level)
