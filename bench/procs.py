"""Processes the bench starts, and what /proc says about them (CPU, memory, sockets).

Every process is started in a process group of its own and registered here; `stop_all()` (run
from a `finally`) ends each group with SIGTERM, then SIGKILL after a grace period. A child
also gets SIGTERM from the kernel if the bench itself dies (PR_SET_PDEATHSIG), so nothing is
left behind even after a `kill -9`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
_started: list[Proc] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    """A child process in its own process group, stopped with the whole group."""

    def __init__(self, name: str, argv: list[str], *, env: dict, cwd: Path, log: Path):
        self.name = name
        self.argv = argv
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, process_group=0, preexec_fn=_die_with_parent,
        )
        self.pid = self.popen.pid
        _started.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Workers may outlive a master that was killed: end whatever is left in the group.
        _signal_group(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log_file.close()
        if self in _started:
            _started.remove(self)

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    for proc in reversed(list(_started)):
        try:
            proc.stop(grace=8)
        except Exception as error:  # keep stopping the others
            print(f"could not stop {proc.name}: {error}")


def raise_fd_limit(wanted: int) -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(wanted, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- /proc --------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process, in seconds (None if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def pids_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def peer_ports_by_inode(server_port: int) -> dict[int, int]:
    """inode -> client port, for the accepted sockets of a server listening on `server_port`."""
    wanted = f"0100007F:{server_port:04X}"
    found = {}
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "01":  # ESTABLISHED
                found[int(fields[9])] = int(fields[2].rsplit(":", 1)[1], 16)
    return found


def worker_of_client_port(server_port: int, workers: list[int]) -> dict[int, int]:
    """client port -> worker pid that holds the other end of that connection."""
    by_inode = peer_ports_by_inode(server_port)
    out = {}
    for pid in workers:
        for inode in socket_inodes(pid):
            port = by_inode.get(inode)
            if port is not None:
                out[port] = pid
    return out


def system_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, every core), in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL process, plus what its postmaster's ended backends used (about:
    a backend that ends during a measurement counts whole)."""
    total = 0.0
    for pid in pids_named("postgres"):
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
        try:
            parent = Path(f"/proc/{fields[1]}/comm").read_text().strip()
        except OSError:
            parent = ""
        if parent != "postgres":
            total += int(fields[13]) + int(fields[14])  # the postmaster: its reaped children
    return total / CLK_TCK


class CpuMeter:
    """CPU used by named processes between `start()` and `stop()`, in cores (1.0 = one core).

    A name maps to a pid, or to a function that returns CPU seconds (a group of processes).
    """

    def __init__(self, pids: dict):
        self.pids = pids
        self.begin: dict[str, float | None] = {}
        self.t0 = 0.0

    @staticmethod
    def _read(pid) -> float | None:
        return pid() if callable(pid) else cpu_seconds(pid)

    def start(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.begin = {name: self._read(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.t0, 1e-6)
        out = {}
        for name, pid in self.pids.items():
            now, then = self._read(pid), self.begin.get(name)
            if now is not None and then is not None:
                out[name] = round((now - then) / wall, 3)
        return out
