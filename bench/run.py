"""The real-time benchmark: the app against a bare ASGI yardstick, in one run (bench/README.md).

    make bench                 # the full run (30-35 minutes on 2 cores)
    make bench ARGS=--quick    # under 4 minutes, N up to 1,000

Starts everything it needs on 127.0.0.1 (a throwaway PostgreSQL database, the app under
gunicorn with 2 uvicorn workers as the Procfile runs it, the yardstick the same way, client
processes), measures, prints a table, writes bench/results/<date>.json and .png, and stops
everything it started, also on Ctrl+C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import floors, procs, stats  # noqa: E402
from bench.client import Poster  # noqa: E402
from bench.figures import Figures  # noqa: E402
from bench.harness import Clients, PgSampler, Server, log  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LOOPBACK = {"127.0.0.1", "localhost"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench ARGS=...", description="Benchmark the real-time path against a bare ASGI yardstick."
    )
    parser.add_argument("--quick", action="store_true", help="everyday mode: under 4 minutes, N up to 1,000")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default 3; quick 1)")
    parser.add_argument("--ladder", type=int, nargs=2, metavar=("STEP", "MAX"),
                        help="figure 1: streams added STEP at a time up to MAX (default 500 10000)")
    parser.add_argument("--ladder-keepalive", type=float, default=1.0,
                        help="figure 1: the servers' keep-alive interval, seconds (default 1)")
    parser.add_argument("--settle", type=float,
                        help="seconds to wait after opening or closing streams before measuring (default 2; quick 1)")
    parser.add_argument("--step-limit", type=float, default=120.0,
                        help="figure 1: stop the ladder after a step whose streams took longer than this to open")
    parser.add_argument("--max-rss-gb", type=float,
                        default=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 * 0.3, 1),
                        help="figure 1: stop the ladder when a server's workers hold more memory (default 30%% of RAM)")
    parser.add_argument("--ladder-budget", type=float, default=360.0,
                        help="figure 1: seconds a ladder may take per server before it stops (default 360)")
    parser.add_argument("--fanout-n", type=int, nargs="+", help="figure 2: stream counts (default 100 1000 5000)")
    parser.add_argument("--fanout-seconds", type=float,
                        help="figure 2: seconds of one post per second, per repetition (default 20: 3 x 20 = 60 posts)")
    parser.add_argument("--throughput-n", type=int, nargs="+",
                        help="figure 3: stream counts (default 100 1000; quick 1000)")
    parser.add_argument("--rates", type=float, nargs="+", help="figure 3: posts per second, stepped up (5 ... 400)")
    parser.add_argument("--step-seconds", type=float, help="figure 3: seconds per rate step (default 5)")
    parser.add_argument("--hold-seconds", type=float, help="figure 3: seconds the best rate is held (default 60)")
    parser.add_argument("--db-seconds", type=float, help="figure 4: seconds of sampling per case (default 30)")
    parser.add_argument("--clients", type=int, help="client processes for the streams (default 4; quick 2)")
    parser.add_argument("--audience-n", type=int, nargs="+",
                        help="figure 6: viewers of the live stream (default 100 1000 2000; quick 100 200)")
    parser.add_argument("--audience-seconds", type=float,
                        help="figure 6: seconds of chat at 1 message/s per run (default 20; quick 10)")
    parser.add_argument("--audience-drain", type=float, default=8.0,
                        help="figure 6: seconds to wait for the last messages to arrive after a run (default 8)")
    parser.add_argument("--audience-pool", type=int, default=32,
                        help="figure 6: keep-alive connections for the pages' requests, per client process (32)")
    parser.add_argument("--only", type=int, nargs="+", choices=[1, 2, 3, 4, 5, 6], help="run only these figures")
    parser.add_argument("--servers", nargs="+", choices=["app", "yardstick"], default=["app", "yardstick"],
                        help=argparse.SUPPRESS)  # for working on the bench itself
    parser.add_argument("--profile", action="store_true",
                        help="record the app's workers with py-spy during the largest fan-out run")
    parser.add_argument("--keep-results", type=int, default=0, metavar="N",
                        help="keep the N newest earlier result sets of the same mode in bench/results")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "reps": 1 if quick else 3,
        "ladder": [1000, 1000] if quick else [500, 10000],
        "fanout_n": [100, 1000] if quick else [100, 1000, 5000],
        "fanout_seconds": 5 if quick else 20,
        "throughput_n": [1000] if quick else [100, 1000],
        "rates": [5, 20, 100, 400] if quick else [5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400],
        "step_seconds": 2 if quick else 5,
        "hold_seconds": 3 if quick else 60,
        "db_seconds": 2 if quick else 30,
        "clients": 2 if quick else 4,
        "settle": 1.0 if quick else 2.0,
        "audience_n": [100, 200] if quick else [100, 1000, 2000],
        "audience_seconds": 10 if quick else 20,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.figures = set(args.only or [1, 2, 3, 4, 5, 6])
    return args


class Bench(Figures):
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.pid = os.getpid()
        self.started = datetime.now()
        # A run of some figures only (--only) is its own mode: it neither replaces latest.* nor
        # prunes the full runs' results.
        only = "-only-" + "-".join(map(str, sorted(args.only))) if args.only else ""
        self.stamp = self.started.strftime("%Y-%m-%d-%H%M%S") + ("-quick" if args.quick else "") + only
        self.work = RESULTS / f".run-{self.pid}.tmp"
        self.prefix = f"bench-{self.pid}"
        self.dbname = f"lms_bench_{self.pid}"
        base_db = urlsplit(os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
        base_redis = urlsplit(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
        for url in (base_db, base_redis):
            if url.hostname not in LOOPBACK:
                raise SystemExit(f"The bench only runs against 127.0.0.1; got {url.geturl()}")
        self.pg = {"host": "127.0.0.1", "port": base_db.port or 5432, "user": base_db.username or "postgres",
                   "password": base_db.password or ""}
        auth = self.pg["user"] + (f":{self.pg['password']}" if self.pg["password"] else "")
        self.admin_dsn = f"postgres://{auth}@127.0.0.1:{self.pg['port']}/{base_db.path.lstrip('/') or 'postgres'}"
        self.database_url = f"postgres://{auth}@127.0.0.1:{self.pg['port']}/{self.dbname}"
        self.redis_host, self.redis_port = "127.0.0.1", base_redis.port or 6379
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}{base_redis.path or '/0'}"
        self.csrf = secrets.token_hex(16)  # 32 characters: the form of an unmasked CSRF secret
        self.db_created = False
        self.clients: Clients | None = None
        self.servers: list[Server] = []
        self.sampler: PgSampler | None = None
        self.results: dict = {"figures": {}, "cpu": [], "flags": []}
        self.run_id = 0
        self.profile_files: list[str] = []

        clean = {k: v for k, v in os.environ.items() if not k.startswith(("REALTIME_", "CHAT_", "YARDSTICK_"))}
        for key in ("DATABASE_URL", "REDIS_URL", "DEBUG", "GRIP_URL", "PORT", "WEB_CONCURRENCY"):
            clean.pop(key, None)
        self.app_env = {
            **clean,
            "DJANGO_SETTINGS_MODULE": "lms.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "REALTIME_REDIS_PREFIX": self.prefix,
            "REALTIME_MAX_STREAMS_PER_USER": "100000",
            "CHAT_FLOOD_LIMIT": "1000000",
            "CHAT_FLOOD_WINDOW": "10",
            "PYTHONPATH": str(ROOT),
        }
        self.yardstick_env = {
            **clean,
            "REDIS_URL": self.redis_url,
            "YARDSTICK_REDIS_CHANNEL": f"{self.prefix}:yardstick",
            "PYTHONPATH": str(ROOT),
        }

    # -- setup and teardown ---------------------------------------------------------------------

    def setup(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        procs.raise_fd_limit(20000)
        import psycopg

        log(f"Creating database {self.dbname}")
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self.db_created = True
        env = {**self.app_env}
        self._django(["manage.py", "migrate", "--noinput", "-v", "0"], env)
        if 6 in self.args.figures:
            # Figure 6 renders pages: their static URLs need the manifest, as the Procfile makes it.
            log("Collecting static files (the pages of figure 6 name them)")
            self._django(["manage.py", "collectstatic", "--noinput", "-v", "0"], env)
        readers = max([self.args.ladder[1], *self.args.fanout_n, *self.args.throughput_n, *self.args.audience_n, 1000])
        log(f"Seeding {readers} readers with sessions")
        self.seed = json.loads(self._django(["bench/seed.py", str(readers)], env))
        self.yardstick_env["YARDSTICK_FRAGMENT"] = self.seed["fragment"]
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, body text NOT NULL, created timestamptz NOT NULL)"
            )

    def _django(self, argv: list[str], env: dict) -> str:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def teardown(self) -> None:
        if self.clients is not None:
            self.clients.stop()
        for server in self.servers:
            server.stop()
        procs.stop_all()
        if self.db_created:
            try:
                import psycopg

                with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
                log(f"Dropped database {self.dbname}")
            except Exception as error:
                log(f"Could not drop database {self.dbname}: {error}")
        try:
            import redis

            client = redis.Redis(host=self.redis_host, port=self.redis_port, socket_timeout=5)
            keys = list(client.scan_iter(match=f"{self.prefix}:*", count=1000))[:1_000_000]
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start:start + 1000])
            client.close()
        except Exception as error:
            log(f"Could not clean Redis keys {self.prefix}:*: {error}")
        shutil.rmtree(self.work, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    async def start_server(self, kind: str, keepalive: float) -> Server:
        server = await Server(self, kind, keepalive).start()
        self.servers.append(server)
        return server

    def stop_server(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def meter(self, server: Server) -> procs.CpuMeter:
        pids = {f"worker{i + 1}": pid for i, pid in enumerate(server.workers)}
        pids.update({f"client{i + 1}": pid for i, pid in enumerate(self.clients.pids)})
        pids["bench"] = os.getpid()
        for i, pid in enumerate(procs.pids_named("redis-server")):
            pids[f"redis{i + 1 if i else ''}"] = pid
        pids["postgres"] = procs.postgres_cpu_seconds
        pids["machine"] = procs.system_busy_seconds
        return procs.CpuMeter(pids)

    def record_cpu(self, phase: str, cpu: dict) -> dict:
        client_cores = round(sum(v for k, v in cpu.items() if k.startswith("client") or k == "bench"), 3)
        ours = sum(v for k, v in cpu.items() if k != "machine")
        others = round(max(cpu.get("machine", 0) - ours, 0), 3)
        entry = {"phase": phase, "cores": cpu, "client_cores": client_cores, "other_cores": others,
                 "client_over_half_core": client_cores > 0.5}
        self.results["cpu"].append(entry)
        if client_cores > 0.5:
            self.results["flags"].append(f"{phase}: the client used {client_cores:.2f} cores (over half a core)")
        if others > 0.5:
            self.results["flags"].append(f"{phase}: other processes on the machine used {others:.2f} cores")
        return entry

    async def hold_streams(self, server: Server, held: dict, target: int, balance: bool = True,
                           deadline: float = 240) -> dict:
        """Open streams until `target` are held on `server`, spread evenly over its workers."""
        failures: Counter = Counter()
        if target > len(held):
            opened, failed = await self.clients.open(server, target - len(held), deadline=deadline)
            held.update(opened)
            failures.update(failed)
        worker_of = self.map_workers(server, held)
        for _ in range(10 if balance else 0):
            counts = Counter(worker_of.values())
            heavy, light = (max(server.workers, key=lambda w: counts[w]), min(server.workers, key=lambda w: counts[w]))
            diff = counts[heavy] - counts[light]
            if diff <= max(2, len(held) // 100):
                break
            victims = [idx for idx, w in worker_of.items() if w == heavy][: diff // 2]
            await self.clients.close(victims)
            for idx in victims:
                held.pop(idx, None)
            opened, failed = await self.clients.open(server, len(victims), deadline=deadline)
            held.update(opened)
            failures.update(failed)
            worker_of = self.map_workers(server, held)
        counts = Counter(worker_of.values())
        return {
            "worker_of": worker_of,
            "split": [counts.get(w, 0) for w in server.workers],
            "unmapped": len(held) - len(worker_of),
            "open_failures": sum(failures.values()),
            "failure_kinds": dict(failures),
        }

    async def quiesce(self, limit: float = 30.0) -> float:
        """Wait until the streams receive next to nothing (after joins, the app pushes who is
        here); at least `settle` seconds, at most `limit`. Returns the seconds waited."""
        started = time.monotonic()
        await asyncio.sleep(self.args.settle)
        status = await self.clients.status()
        last = status["received"]
        # Next to nothing: a keep-alive tick (a 10-byte chunk per stream) and change.
        threshold = 20_000 + 16 * status["open"]
        quiet = 0
        while time.monotonic() - started < limit and quiet < 2:
            await asyncio.sleep(0.5)
            now = (await self.clients.status())["received"]
            quiet = quiet + 1 if now - last < threshold else 0
            last = now
        waited = time.monotonic() - started
        if waited >= limit:
            log(f"  the streams were still receiving after {limit:g} s; measuring anyway")
        return round(waited, 1)

    async def recover(self, server: Server) -> float:
        """After a rate the server could not keep up with, wait until its workers are idle again
        (the requests the poster gave up on are still being served), at most 8 s (quick) or 30 s."""
        started, calm = time.monotonic(), 0
        limit = 8.0 if self.args.quick else 30.0
        while time.monotonic() - started < limit and calm < 2:
            meter = procs.CpuMeter({str(pid): pid for pid in server.workers}).start()
            await asyncio.sleep(0.5)
            calm = calm + 1 if sum(meter.stop().values()) < 0.3 else 0
        return round(time.monotonic() - started, 1)

    @staticmethod
    def map_workers(server: Server, held: dict) -> dict:
        by_port = procs.worker_of_client_port(server.port, server.check_workers())
        return {idx: by_port[port] for idx, port in held.items() if port in by_port}

    async def post_run(self, server: Server, streams: int, rate: float, seconds: float, *, windows: int = 1,
                       drain: float = 5.0, phase: str) -> dict:
        """Post at `rate` for `seconds` through the server's POST endpoint; figures of the run."""
        self.run_id += 1
        run = self.run_id
        await self.clients.reset(run)
        meter = self.meter(server).start()
        poster = Poster(server.port, server.post_request, timeout=2.5 if self.args.quick else 10.0)
        try:
            posts = await poster.run(run, rate, max(1, int(round(rate * seconds))))
        finally:
            poster.close()
        ok = sum(1 for p in posts if 200 <= p[4] < 300)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            status = await self.clients.status()
            if status["deliveries"] >= ok * streams:
                break
            await asyncio.sleep(0.1)
        cpu = self.record_cpu(phase, meter.stop())
        result = stats.analyze_posts(posts, await self.clients.collect(), streams, windows=windows)
        result["cpu"] = cpu
        return result

    async def warm_up(self, server: Server) -> None:
        """A few streams and posts, so both workers have loaded what a post and a push need."""
        held: dict = {}
        await self.hold_streams(server, held, 8)
        await self.post_run(server, len(held), 5, 2, phase=f"warm-up {server.name}", drain=2)
        await self.clients.close(list(held))

    # -- the whole run ---------------------------------------------------------------------------

    async def measure(self) -> None:
        args = self.args
        self.results["meta"] = {
            "started": self.started.isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
                        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
            "load_average_at_start": os.getloadavg(),
            "fragment_bytes": self.seed["fragment_bytes"],
            "database": self.dbname,
            "redis_prefix": self.prefix,
        }
        self.clients = Clients(args.clients, self.seed["sessions"])

        if args.figures - {6}:  # figure 6 compares the app with itself
            log("Floors: a bare Redis PUBLISH -> SUBSCRIBE loop and a pgbench single-row INSERT")
            self.results["redis_loop"] = await floors.redis_loop(
                self.redis_host, self.redis_port, f"{self.prefix}:loop", self.seed["fragment_bytes"],
                count=500 if args.quick else 2000, burst=5000 if args.quick else 20000, seconds=10,
            )
        if 5 in args.figures:
            seconds = 1 if args.quick else 10
            self.results["pgbench"] = {
                "insert": floors.pgbench_insert(self.dbname, seconds=seconds, **self.pg_args()),
                "insert_new_connection": floors.pgbench_insert(
                    self.dbname, seconds=seconds, new_connection=True, **self.pg_args()
                ),
            }

        self.sampler = PgSampler(self.database_url, self.dbname)
        await self.sampler.start()
        under_load = bool(args.figures & {2, 3, 4, 5})
        if 1 in args.figures and not args.quick:
            # A fresh server per ladder, with a short keep-alive; then others for figures 2-4.
            for kind in args.servers:
                server = await self.start_server(kind, args.ladder_keepalive)
                try:
                    await self.warm_up(server)
                    await self.ladder(server, {})
                finally:
                    await self.clients.release()
                    self.stop_server(server)
        for kind in args.servers if under_load or (args.quick and 1 in args.figures) else []:
            # Quick mode: one server per kind for every figure (ladder first, keep-alive as the ladder's).
            keepalive = args.ladder_keepalive if args.quick and 1 in args.figures else 20.0
            server = await self.start_server(kind, keepalive)
            try:
                await self.warm_up(server)
                if 4 in args.figures and kind == "app":
                    await self.sample_db("idle 0", f"Figure 4: pg_stat_activity for {args.db_seconds:g} s "
                                                   "with 0 streams")
                held: dict = {}
                if 1 in args.figures and args.quick:
                    await self.ladder(server, held)
                if under_load:
                    await self.session(server, held)
            finally:
                await self.clients.release()
                self.stop_server(server)
        if 6 in args.figures:
            await self.audience()
        self.finish_db_figure()
        await self.sampler.stop()
        self.results["profiles"] = self.profile_files
        self.results["meta"]["load_average_at_end"] = os.getloadavg()

    def pg_args(self) -> dict:
        return {"host": self.pg["host"], "port": self.pg["port"], "user": self.pg["user"]}


def clean_old_results(keep: int, current: str) -> None:
    """Keep this run's files and the `keep` newest earlier sets of the same mode (quick or full,
    all figures or the same --only ones): the part of the stamp after its date and time."""
    mode = current[len("2026-01-01-000000"):]
    stamps = sorted({p.name.split(".")[0].split("-profile")[0] for p in RESULTS.glob("20*")}, reverse=True)
    same_mode = [s for s in stamps if s != current and s[len("2026-01-01-000000"):] == mode]
    for stamp in same_mode[keep:]:
        for path in RESULTS.glob(f"{stamp}.*"):
            path.unlink(missing_ok=True)
        for path in RESULTS.glob(f"{stamp}-profile-*"):
            path.unlink(missing_ok=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    started = time.monotonic()
    status = 0
    try:
        bench.setup()
        asyncio.run(bench.measure())
    except KeyboardInterrupt:
        log("Interrupted: stopping everything the bench started")
        status = 130
    finally:
        bench.teardown()
    if status:
        return status
    from bench import report

    bench.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    paths = report.write(bench.results, RESULTS, bench.stamp)
    print(report.table(bench.results))
    for path in paths:
        print(f"Wrote {path.relative_to(ROOT)}")
    clean_old_results(args.keep_results, bench.stamp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
