"""What the bench drives: the two servers, the client processes, the pg_stat_activity sampler."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from bench import procs, stats
from bench.client import worker_main

if TYPE_CHECKING:
    from bench.run import Bench

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the servers --------------------------------------------------------------------------------


class Server:
    """The app or the yardstick: gunicorn, 2 uvicorn workers, on a free 127.0.0.1 port."""

    def __init__(self, bench: Bench, kind: str, keepalive: float):
        self.bench = bench
        self.kind = kind
        self.keepalive = keepalive
        self.port = procs.free_port()
        self.proc: procs.Proc | None = None
        self.workers: list[int] = []
        self.restarts = 0

    @property
    def name(self) -> str:
        return self.kind

    def argv(self) -> list[str]:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        common = ["--workers", "2", "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "10",
                  "--timeout", "60", "--access-logfile", "-"]
        if self.kind == "app":  # as the Procfile's web process (collectstatic aside)
            return [gunicorn, "lms.asgi:application", "-k", "lms.workers.UvicornWorker", *common]
        return [gunicorn, "bench.yardstick:app", "-k", "uvicorn_worker.UvicornWorker", *common]

    async def start(self) -> Server:
        env = dict(self.bench.app_env if self.kind == "app" else self.bench.yardstick_env)
        env["REALTIME_KEEPALIVE_SECONDS" if self.kind == "app" else "YARDSTICK_KEEPALIVE_SECONDS"] = str(self.keepalive)
        log_path = self.bench.work / f"{self.kind}-{self.port}.log"
        self.proc = procs.Proc(self.kind, self.argv(), env=env, cwd=ROOT, log=log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"{self.kind} exited at start:\n{self.proc.tail()}")
            ready = self.proc.tail(20000).count("Application startup complete")
            if ready >= 2 and await http_status(self.port, "/healthz") == 200:
                self.workers = procs.children(self.proc.pid)
                if len(self.workers) == 2:
                    return self
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not start in 60 s:\n{self.proc.tail()}")

    def check_workers(self) -> list[int]:
        """The workers now; a worker that gunicorn replaced (WORKER TIMEOUT) is logged and flagged."""
        now = procs.children(self.proc.pid) if self.proc is not None else []
        gone = [pid for pid in self.workers if pid not in now]
        if gone and now:
            timeouts = self.proc.tail(2_000_000).count("WORKER TIMEOUT")
            message = (f"{self.kind}: worker(s) {gone} replaced by {[p for p in now if p not in self.workers]}"
                       f" ({timeouts} gunicorn WORKER TIMEOUT in its log so far)")
            log("  " + message)
            self.bench.results["flags"].append(message)
            self.restarts += len(gone)
            self.workers = now
        return self.workers

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.summarize_log()
            self.proc = None

    def summarize_log(self) -> None:
        """Count the errors the server logged (the log itself is removed with the run's files)."""
        found = self.bench.results.setdefault("server_errors", {}).setdefault(self.kind, {})
        try:
            with open(self.proc.log, errors="replace") as lines:
                for line in lines:
                    if any(word in line for word in ("ERROR", "CRITICAL", "Error:", "Exception:")):
                        key = line.split("] ", 3)[-1].strip()[:200] if line.startswith("[") else line.strip()[:200]
                        key = key.split(" ", 3)[-1] if key[:4].isdigit() else key  # drop a timestamp
                        found[key] = found.get(key, 0) + 1
        except OSError:
            pass

    def stream_path(self) -> str:
        return f"/events/?channel=room-{self.bench.seed['room_id']}"

    def post_request(self, run: int, seq: int, intended: int, *, room_id: int | None = None,
                     page: str = "/chat/") -> bytes:
        token = f"BQ{run}R{seq}T{intended}E"
        host = f"127.0.0.1:{self.port}"
        if self.kind == "app":
            csrf = self.bench.csrf
            body = urlencode({"body": token, "client_token": str(uuid.uuid4()), "csrfmiddlewaretoken": csrf})
            head = (
                f"POST /chat/{room_id or self.bench.seed['room_id']}/messages/ HTTP/1.1\r\nHost: {host}\r\n"
                f"Cookie: sessionid={self.bench.seed['poster_session']}; csrftoken={csrf}\r\n"
                f"X-CSRFToken: {csrf}\r\nHX-Request: true\r\nHX-Current-URL: http://{host}{page}\r\n"
                f"Origin: http://{host}\r\nReferer: http://{host}{page}\r\n"
            )
        else:
            body = urlencode({"token": token, "seq": seq})
            head = f"POST /publish/?channel=room-{self.bench.seed['room_id']} HTTP/1.1\r\nHost: {host}\r\n"
        return (
            f"{head}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    def log_size(self) -> int:
        try:
            return Path(self.proc.log).stat().st_size
        except OSError:
            return 0

    def errors_since(self, offset: int) -> dict:
        """Tracebacks and ERROR lines the server logged after `offset` (its log's size then)."""
        found = {"tracebacks": 0, "error_lines": 0, "first": [], "kinds": {}}
        try:
            with open(self.proc.log, "rb") as log_file:
                log_file.seek(offset)
                text = log_file.read(50_000_000).decode("utf-8", "replace")
        except OSError:
            return found
        lines = text.splitlines()
        kinds: Counter = Counter()
        for i, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last)"):
                found["tracebacks"] += 1
                tail = next((x for x in lines[i + 1:i + 200] if x and not x.startswith((" ", "\t"))), line)
                kinds[tail.strip()[:160]] += 1
                if len(found["first"]) < 5:
                    found["first"].append(tail.strip()[:200])
            elif "ERROR" in line or "CRITICAL" in line:
                found["error_lines"] += 1
                message = re.sub(r"^\[?[\d\-:T ,.+]+\]?\s*", "", line.split("] ")[-1].strip())  # no timestamp
                kinds[re.sub(r"\d+", "N", message)[:160]] += 1
                if len(found["first"]) < 5:
                    found["first"].append(line.strip()[:200])
        found["kinds"] = dict(kinds.most_common(5))
        return found

    def rss(self) -> dict[int, int | None]:
        return {pid: procs.rss_kb(pid) for pid in self.workers}


async def http_status(port: int, path: str) -> int | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), 5)
        return int(line.split()[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        return None
    finally:
        writer.transport.abort()


# -- the client processes -------------------------------------------------------------------------


class Clients:
    """Client processes holding the streams, driven over pipes."""

    def __init__(self, count: int, sessions: list[str]):
        context = multiprocessing.get_context("spawn")
        self.sessions = sessions
        self.conns, self.processes = [], []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(child,), daemon=True)
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)
        self.next_idx = 0
        self.out_of_step = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def call(self, name: str, kwargs_list: list[dict], timeout: float = 120) -> list:
        """Send one command to every client process and wait for all the answers."""
        if self.out_of_step:
            raise RuntimeError("the client processes were interrupted mid-command")
        self.out_of_step = True  # until every answer is in: an interrupted call leaves answers behind
        for conn, kwargs in zip(self.conns, kwargs_list, strict=True):
            conn.send((name, kwargs))
        answers = await asyncio.gather(*(self._receive(conn, name, timeout) for conn in self.conns))
        self.out_of_step = False
        return answers

    @staticmethod
    async def _receive(conn, name: str, timeout: float):
        # Wait on the pipe in the event loop, not in a thread: a thread blocked on a pipe would
        # hold up the exit after Ctrl+C.
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
        except TimeoutError:
            raise TimeoutError(f"a client process did not answer {name!r} in {timeout:g} s") from None
        finally:
            loop.remove_reader(conn.fileno())
        return conn.recv()

    async def open(self, server: Server, count: int, concurrency: int = 128,
                   deadline: float = 240) -> tuple[dict, Counter]:
        """Open `count` new streams, spread over the client processes; {idx: local port}.
        Streams not open within `deadline` seconds are given up (counted as failures)."""
        items: list[list] = [[] for _ in self.conns]
        for _ in range(count):
            idx = self.next_idx
            self.next_idx += 1
            items[idx % len(self.conns)].append((idx, self.sessions[idx % len(self.sessions)]))
        answers = await self.call("open", [
            {"port": server.port, "path": server.stream_path(), "items": part,
             "concurrency": concurrency, "timeout": 60, "deadline": deadline} for part in items
        ], timeout=deadline + 60)
        opened, failures = {}, Counter()
        for answer in answers:
            if "error" in answer:
                raise RuntimeError(f"client failed: {answer['error']}")
            opened.update(dict(answer["opened"]))
            failures.update(answer["failures"])
        return opened, failures

    async def close(self, idxs=None) -> None:
        if idxs is None:
            await self.call("close", [{"idxs": None}] * len(self.conns))
        else:
            parts: list[list] = [[] for _ in self.conns]
            for idx in idxs:
                parts[idx % len(self.conns)].append(idx)
            await self.call("close", [{"idxs": part} for part in parts])

    async def release(self) -> None:
        """Close every stream, if the processes can still be asked (cleanup after an error)."""
        if not self.out_of_step:
            try:
                await asyncio.wait_for(self.close(), 60)
            except (TimeoutError, OSError, RuntimeError) as error:
                log(f"could not close the streams: {error!r}")

    # -- figure 6: viewers whose pages react ------------------------------------------------------

    async def audience_open(self, server: Server, first: int, count: int, page_path: str, *, pool_size: int,
                            deadline: float = 300) -> tuple[dict, Counter, dict | None]:
        """Viewers `first` .. `first + count - 1` (each a user of its own) open the page and its
        stream; {idx: local port}, failures, and one viewer's reaction table."""
        import secrets

        items: list[list] = [[] for _ in self.conns]
        for offset in range(count):
            user = first + offset
            idx = self.next_idx
            self.next_idx += 1
            items[idx % len(self.conns)].append((idx, self.sessions[user], secrets.token_hex(16)))
        answers = await self.call("audience_open", [
            {"port": server.port, "page_path": page_path, "items": part, "pool_size": pool_size,
             "concurrency": 32, "timeout": 60, "deadline": deadline} for part in items
        ], timeout=deadline + 60)
        opened, failures, table = {}, Counter(), None
        for answer in answers:
            if "error" in answer:
                raise RuntimeError(f"client failed: {answer['error']}")
            opened.update(dict(answer["opened"]))
            failures.update(answer["failures"])
            table = table or answer["table"]
        return opened, failures, table

    async def audience_react(self, on: bool) -> int:
        answers = await self.call("audience_react", [{"on": on}] * len(self.conns))
        return sum(a["inflight"] for a in answers)

    async def audience_collect(self) -> tuple[dict, dict]:
        parts = await self.call("collect", [{}] * len(self.conns), timeout=300)
        tally = {"requests": 0, "by_kind": Counter(), "status": Counter(), "failed": 0, "ms": [], "loop_capped": 0}
        for part in parts:
            t = part["tally"]
            tally["requests"] += t["requests"]
            tally["failed"] += t["failed"]
            tally["loop_capped"] += t["loop_capped"]
            tally["by_kind"].update(t["by_kind"])
            tally["status"].update(t["status"])
            tally["ms"].extend(t["ms"])
        tally["events"] = sum(p["events"] for p in parts)
        return stats.merge_collected(parts), tally

    async def audience_close(self) -> None:
        await self.call("audience_close", [{}] * len(self.conns))

    async def reset(self, run: int, heartbeats: bool = False) -> None:
        await self.call("reset", [{"run": run, "heartbeats": heartbeats}] * len(self.conns))

    async def status(self) -> dict:
        answers = await self.call("status", [{}] * len(self.conns))
        return {key: sum(a[key] for a in answers) for key in answers[0]}

    async def collect(self) -> dict:
        return stats.merge_collected(await self.call("collect", [{}] * len(self.conns), timeout=300))

    def stop(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("stop", {}))
            except (OSError, BrokenPipeError):
                pass
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


# -- database sampling -------------------------------------------------------------------------


class PgSampler:
    """pg_stat_activity for the bench database, once a second, tagged with the current phase."""

    def __init__(self, dsn: str, dbname: str):
        self.dsn = dsn
        self.dbname = dbname
        self.phase = "setup"
        self.samples: list[tuple[str, int, int, int]] = []
        self.task = None

    async def start(self) -> None:
        import psycopg

        self.conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        query = (
            "SELECT count(*), count(*) FILTER (WHERE state = 'active'), "
            "count(*) FILTER (WHERE state LIKE 'idle in transaction%%') FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()"
        )
        while True:
            started = time.monotonic()
            try:
                row = await (await self.conn.execute(query, (self.dbname,))).fetchone()
                self.samples.append((self.phase, *row))
            except Exception as error:  # keep sampling: one failed sample is not a result
                log(f"pg_stat_activity sample failed: {error}")
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    def of(self, phase_prefix: str) -> dict:
        rows = [s for s in self.samples if s[0].startswith(phase_prefix)]
        if not rows:
            return {"samples": 0}
        totals = [r[1] for r in rows]
        return {
            "samples": len(rows),
            "max": max(totals),
            "mean": round(sum(totals) / len(totals), 2),
            "max_active": max(r[2] for r in rows),
            "max_idle_in_transaction": max(r[3] for r in rows),
            # In use: running a query or inside a transaction. The rest are idle in the pools.
            "max_in_use": max(r[2] + r[3] for r in rows),
        }

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            await self.conn.close()


