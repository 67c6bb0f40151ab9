"""The figures: what each measures and how (bench/README.md explains how to read them).

`Figures` is mixed into `bench.run.Bench`, which owns the servers, the client processes, the
sampler and the results; each method here runs one figure (or part of one) against one server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import procs, stats
from bench.client import Poster
from bench.harness import ROOT, Server, log

RESULTS = ROOT / "bench" / "results"


class Figures:
    # -- figure 1: connections held ---------------------------------------------------------------

    async def ladder(self, server: Server, held: dict) -> None:
        """Figure 1: idle streams added a step at a time to a fresh server; memory and keep-alive
        lateness per step. Leaves the streams open (`held`)."""
        step, top = self.args.ladder
        keepalive = server.keepalive
        log(f"Figure 1, {server.name}: idle streams {step:,} at a time up to {top:,}, "
            f"{self.args.reps} keep-alive round(s) of {keepalive:g} s per step")
        await asyncio.sleep(self.args.settle)
        baseline = server.rss()
        steps = []
        stopped = None
        deadline = time.monotonic() + self.args.ladder_budget
        for target in range(step, top + 1, step):
            if time.monotonic() > deadline:
                log(f"  ladder stopped: out of time ({self.args.ladder_budget:g} s, --ladder-budget)")
                stopped = "out of time"
                break
            if steps and steps[-1]["open_seconds"] > self.args.step_limit * 0.9:
                log(f"  ladder stopped: the last {step:,} streams took more than {self.args.step_limit:g} s to open")
                stopped = "a step took too long to open"
                break
            started = time.monotonic()
            opening = self.meter(server).start()
            placed = await self.hold_streams(server, held, target, deadline=self.args.step_limit)
            open_cpu = opening.stop()
            open_seconds = time.monotonic() - started
            settle_seconds = await self.quiesce()
            if self.sampler:
                self.sampler.phase = f"ladder {server.name} {target}"
            await self.clients.reset(0, heartbeats=True)
            meter = self.meter(server).start()
            await asyncio.sleep(self.args.reps * keepalive + 1.1)
            cpu = meter.stop()
            collected = await self.clients.collect()
            await self.clients.reset(0, heartbeats=False)
            if self.sampler:
                self.sampler.phase = "between"
            beat = stats.heartbeat_lag(collected["hb_idx"], collected["hb_ns"], placed["worker_of"], keepalive)
            rss = server.rss()
            entry = {
                "n": len(held),
                "split": placed["split"],
                "open_failures": placed["open_failures"],
                "open_seconds": round(open_seconds, 2),
                "settle_seconds": settle_seconds,
                "open_cores": {k: v for k, v in open_cpu.items() if k.startswith("worker") or k == "postgres"},
                "rss_kb": {str(pid): kb for pid, kb in rss.items()},
                "streams_per_worker": {str(pid): c for pid, c in zip(server.workers, placed["split"])},
                "heartbeat": beat,
                "idle_cores": {k: v for k, v in cpu.items() if k.startswith("worker") or k in ("postgres", "redis")},
                "worker_cpu": round(sum(v for k, v in cpu.items() if k.startswith("worker")), 3),
                "client_cpu": round(sum(v for k, v in cpu.items() if k.startswith("client") or k == "bench"), 3),
                "other_cores": round(max(cpu.get("machine", 0) - sum(v for k, v in cpu.items() if k != "machine"), 0),
                                     3),
                "received_mb": round(collected["received"] / 1e6, 2),
                "dropped": collected["dropped"],
            }
            steps.append(entry)
            p99 = beat["p99"]
            log(f"  {len(held):>6,} streams {placed['split']}: opened in {open_seconds:.1f} s, quiet after "
                f"{settle_seconds:g} s, heartbeat p99 "
                f"{fmt_ms(p99)} (max {fmt_ms(beat['max'])}), RSS {sum(v or 0 for v in rss.values()) / 1024:.0f} MB, "
                f"idle workers {entry['worker_cpu']:.2f} cores, {entry['received_mb']:.1f} MB in")
            total_rss_gb = sum(v or 0 for v in rss.values()) / 2**20
            if total_rss_gb > self.args.max_rss_gb:
                log(f"  ladder stopped: the workers hold {total_rss_gb:.1f} GB (--max-rss-gb {self.args.max_rss_gb:g})")
                stopped = f"workers over {self.args.max_rss_gb:g} GB"
                break
            if placed["open_failures"] > step * 0.05 or not server.proc.alive():
                log(f"  ladder stopped: {placed['open_failures']} streams failed to open {placed['failure_kinds']}")
                stopped = "streams failed to open"
                break
            if (p99 if p99 is not None else beat.get("partial_max") or 0) > 5000:
                log("  ladder stopped: keep-alives more than 5 s late")
                stopped = "keep-alives more than 5 s late"
                break
        # Memory per stream: the slope of each worker's RSS against its streams, averaged.
        slopes = []
        for pid in baseline:
            points = [(s["streams_per_worker"].get(str(pid)), s["rss_kb"].get(str(pid))) for s in steps]
            points = [(x, y) for x, y in points if x is not None and y is not None]
            value = stats.slope([0, *(x for x, _ in points)], [baseline[pid], *(y for _, y in points)])
            if value is not None:
                slopes.append(value)
        good = 0
        for entry in steps:
            if entry["heartbeat"]["p99"] is None or entry["heartbeat"]["p99"] >= 1000 or entry["open_failures"]:
                break
            good = entry["n"]
        figure = self.results["figures"].setdefault(
            "connections", {"keepalive_seconds": keepalive, "rounds_per_step": self.args.reps}
        )
        figure[server.kind] = {
            "baseline_rss_kb": {str(k): v for k, v in baseline.items()},
            "steps": steps,
            "kb_per_stream": round(sum(slopes) / len(slopes), 2) if slopes else None,
            "max_n_heartbeat_under_1s": good,
            "max_n_held": max((s["n"] for s in steps), default=0),
            "stopped": stopped,
            "worker_restarts": server.restarts,
        }

    # -- figures 2, 3 and 4: one set of streams per N, largest first ------------------------------

    def sizes(self, kind: str) -> list[int]:
        args, sizes = self.args, set()
        if args.figures & {2, 5}:
            sizes |= set(args.fanout_n)
        if 3 in args.figures:
            sizes |= set(args.throughput_n)
        if 4 in args.figures and kind == "app":
            sizes.add(1000)
        return sorted(sizes, reverse=True)

    async def session(self, server: Server, held: dict) -> None:
        """Figures 2 to 4 on one server: streams opened once for the largest N, then closed down
        to each smaller N (the heavier worker's first), so a stream is opened only once."""
        args = self.args
        for n in self.sizes(server.kind):
            started = time.monotonic()
            placed = await self.resize(server, held, n)
            ready = time.monotonic() - started
            settle_seconds = await self.quiesce()
            log(f"{server.name}: {len(held):,} streams {placed['split']} ready in {ready:.1f} s, quiet after "
                f"{settle_seconds:g} s"
                + (f", {placed['open_failures']} failed {placed['failure_kinds']}" if placed["open_failures"] else ""))
            placed["ready_seconds"], placed["settle_seconds"] = round(ready, 1), settle_seconds
            try:
                if 4 in args.figures and server.kind == "app" and n == 1000:
                    self.results["figures"].setdefault("db_connections", {})["streams_held"] = len(held)
                    await self.sample_db("idle 1000", f"Figure 4: pg_stat_activity for {args.db_seconds:g} s "
                                                      f"with {len(held):,} idle streams")
                if args.figures & {2, 5} and n in args.fanout_n:
                    result = await self.fanout(server, len(held), placed, n == max(args.fanout_n))
                    self.results["figures"].setdefault("fanout", {}).setdefault(server.kind, {})[str(n)] = result
                if 3 in args.figures and n in args.throughput_n:
                    if self.sampler and server.kind == "app":
                        self.sampler.phase = f"throughput N={n}"
                    result = await self.throughput(server, len(held), placed)
                    self.results["figures"].setdefault("throughput", {}).setdefault(server.kind, {})[str(n)] = result
            finally:
                if self.sampler:
                    self.sampler.phase = "between"
        await self.clients.close()
        held.clear()

    async def resize(self, server: Server, held: dict, n: int) -> dict:
        """Hold exactly `n` streams on `server`, evenly over its workers."""
        if n >= len(held):
            return await self.hold_streams(server, held, n)
        worker_of = self.map_workers(server, held)
        by_worker = {w: [i for i, pid in worker_of.items() if pid == w] for w in server.workers}
        victims = [i for i in held if i not in worker_of]  # (none, normally)
        while len(held) - len(victims) > n:
            fullest = max(by_worker, key=lambda w: len(by_worker[w]))
            victims.append(by_worker[fullest].pop())
        await self.clients.close(victims)
        for idx in victims:
            held.pop(idx, None)
        return await self.hold_streams(server, held, n)

    async def sample_db(self, phase: str, message: str) -> None:
        log(message)
        self.sampler.phase = phase
        await asyncio.sleep(self.args.db_seconds)
        self.sampler.phase = "between"

    async def fanout(self, server: Server, n: int, placed: dict, largest: bool) -> dict:
        """Figure 2: one post a second through the POST endpoint, `reps` times."""
        reps = []
        for rep in range(self.args.reps):
            profile = None
            if self.args.profile and server.kind == "app" and largest and rep == 0:
                profile = self.start_profile(server, self.args.fanout_seconds + 2)
            result = await self.post_run(server, n, 1.0, self.args.fanout_seconds,
                                         phase=f"fanout {server.name} N={n} rep {rep + 1}")
            if profile:
                self.finish_profile(profile)
            result["split"] = placed["split"]
            result["open_failures"] = placed["open_failures"]
            result["ready_seconds"] = placed.get("ready_seconds")
            result["settle_seconds"] = placed.get("settle_seconds")
            reps.append(result)
            log(f"Figure 2, {server.name}, N={n:,}, rep {rep + 1}: fan-out p50 {fmt_ms(result['fanout_ms']['p50'])}"
                f" p99 {fmt_ms(result['fanout_ms']['p99'])} max {fmt_ms(result['fanout_ms']['max'])}, "
                f"POST p50 {fmt_ms(result['post_ms']['p50'])} p99 {fmt_ms(result['post_ms']['p99'])}, "
                f"lost {result['lost']}, client {result['cpu']['client_cores']:.2f} cores")
        return {"median": stats.median_dict([strip(r) for r in reps]), "reps": reps}

    async def throughput(self, server: Server, n: int, placed: dict) -> dict:
        """Figure 3: rates stepped up until one is not held; the best then held for longer.

        Stepping goes on past a rate whose only fault is POST p99 (while the fan-out still
        keeps up), so the figure also says how far the fan-out alone goes.
        """
        steps, best, best_fanout, unbroken = [], None, None, True
        for rate in self.args.rates:
            result = await self.post_run(server, n, rate, self.args.step_seconds, drain=2 if self.args.quick else 3,
                                         phase=f"throughput {server.name} N={n} {rate:g}/s")
            result["held"] = held_ok(result)
            result["fanout_held"] = fanout_ok(result)
            steps.append(strip(result))
            verdict = ("held" if result["held"] else
                       "fan-out held, POST too slow" if result["fanout_held"] else "not held")
            log(f"Figure 3, {server.name}, N={n:,}, {rate:g} posts/s: POST p99 {fmt_ms(result['post_ms']['p99'])}, "
                f"fan-out p99 {fmt_ms(result['fanout_ms']['p99'])}, {result['deliveries_per_s']:,.0f} deliveries/s, "
                f"lost {result['lost']}{', backlog growing' if result['backlog_growing'] else ''} -> {verdict}")
            unbroken = unbroken and result["held"]
            if unbroken:
                best = rate
            if not result["held"]:
                result["recovery_seconds"] = steps[-1]["recovery_seconds"] = await self.recover(server)
            if not result["fanout_held"]:
                break
            best_fanout = result
        holds, hold = [], None
        for rate in [r for r in self.args.rates if best is not None and r <= best][::-1][:2]:
            result = await self.post_run(server, n, rate, self.args.hold_seconds, windows=max(1, self.args.reps),
                                         drain=5, phase=f"throughput hold {server.name} N={n} {rate:g}/s")
            result["held"] = held_ok(result) and all(held_ok(w, whole=False) for w in result.get("windows", []))
            holds.append(strip(result))
            log(f"Figure 3, {server.name}, N={n:,}, {rate:g} posts/s for {self.args.hold_seconds:g} s: "
                f"{'held' if result['held'] else 'not held'}, {result['deliveries_per_s']:,.0f} deliveries/s, "
                f"POST p99 {fmt_ms(result['post_ms']['p99'])}, fan-out p99 {fmt_ms(result['fanout_ms']['p99'])}")
            if result["held"]:
                hold = result
                break
            if self.args.quick:
                break
            await self.recover(server)
        figure = {"n": n, "split": placed["split"], "steps": steps, "holds": holds, "best": None,
                  "best_fanout_only": None}
        if best_fanout is not None:
            figure["best_fanout_only"] = {
                "rate": best_fanout["rate"],
                "deliveries_per_s": best_fanout["deliveries_per_s"],
                "post_p99_ms": best_fanout["post_ms"]["p99"],
                "fanout_p99_ms": best_fanout["fanout_ms"]["p99"],
                "seconds": self.args.step_seconds,
            }
        if hold is not None:
            parts = hold.get("windows") or [hold]
            figure["best"] = {
                "rate": hold["rate"],
                "deliveries_per_s": stats.median_of([w["deliveries_per_s"] for w in parts]),
                "post_p50_ms": stats.median_of([w["post_ms"]["p50"] for w in parts]),
                "post_p99_ms": stats.median_of([w["post_ms"]["p99"] for w in parts]),
                "fanout_p99_ms": stats.median_of([w["fanout_ms"]["p99"] for w in parts]),
                "lost": hold["lost"],
                "client_cores": hold["cpu"]["client_cores"],
            }
        return figure

    def finish_db_figure(self) -> None:
        if self.sampler is None or 4 not in self.args.figures:
            return
        figure = self.results["figures"].setdefault("db_connections", {})
        figure["idle_0"] = self.sampler.of("idle 0")
        figure["idle_1000"] = self.sampler.of("idle 1000")
        figure["throughput"] = self.sampler.of("throughput")
        figure["ladder_idle"] = self.sampler.of("ladder app")

    # -- figure 6: a livestream audience whose pages react as the real page does ------------------

    async def audience(self) -> None:
        """Figure 6: N viewers of one live stream (each a user of its own, holding the stream page's
        own event stream) while one person chats at 1 message/s; the same viewers with their
        reactions off (the ideal), then reacting as the page does (bench/audience.py)."""
        args = self.args
        seed = self.seed
        page = f"/livestream/{seed['stream_id']}/"
        figure = self.results["figures"].setdefault("audience", {
            "seconds": args.audience_seconds, "rate": 1.0, "page": page, "pool_per_process": args.audience_pool,
            "rows": {},
        })
        server = await self.start_server("app", 20.0)

        def post(run: int, seq: int, intended: int) -> bytes:
            return server.post_request(run, seq, intended, room_id=seed["stream_room_id"], page=page)

        try:
            await self.warm_up(server)
            held: dict = {}
            users = 0  # viewers are users 0, 1, 2, ... of the seed, each once (also after a failure)
            for n in sorted(args.audience_n):
                started = time.monotonic()
                log_offset = server.log_size()
                opened, failures, table = await self.clients.audience_open(
                    server, users, n - len(held), page, pool_size=args.audience_pool,
                    deadline=args.step_limit * 2,
                )
                users += n - len(held)
                held.update(opened)
                ready = time.monotonic() - started
                if table and "table" not in figure:
                    figure["table"] = table
                    log(f"Figure 6: the stream page's reactions ({table['stream_url']}):")
                    for line in table["reactions"]:
                        log(f"  {line}")
                settle = await self.quiesce()
                settle += await self.log_quiet(server, log_offset)
                log(f"Figure 6: {len(held):,} viewers ready in {ready:.1f} s, quiet after {settle:g} s"
                    + (f", {sum(failures.values())} failed {dict(failures)}" if failures else ""))
                row = {"viewers": len(held), "ready_seconds": round(ready, 1), "open_failures": dict(failures),
                       "open_server_errors": server.errors_since(log_offset)}
                row["ideal"] = await self.audience_run(server, post, len(held), f"audience N={n} ideal")
                await self.clients.audience_react(True)
                await asyncio.sleep(args.settle)
                row["reacting"] = await self.audience_run(server, post, len(held), f"audience N={n} reacting")
                await self.clients.audience_react(False)
                row["drained_seconds"] = await self.drain_requests()
                # The requests the pages sent during the run and the server answered after it
                # belong to it: their answers, and what the server logged meanwhile.
                self.audience_answers(row["reacting"], (await self.clients.audience_collect())[1], server)
                figure["rows"][str(n)] = row
                for mode in ("ideal", "reacting"):
                    r = row[mode]
                    log(f"Figure 6, N={n:,}, {mode}: {num1(r['deliveries_per_message'])} deliveries/message, "
                        f"{num1(r['kb_per_message'])} KB/message, {num1(r['requests_per_message'])} requests/message, "
                        f"message p50 {fmt_ms(r['message_ms']['p50'])} p99 {fmt_ms(r['message_ms']['p99'])}, "
                        f"POST p99 {fmt_ms(r['post_ms']['p99'])}, worker CPU {r['cpu_s_per_message']:.3f} s/message, "
                        f"{r['http_5xx']} 5xx, {r['server_errors']['tracebacks'] + r['server_errors']['error_lines']}"
                        f" server errors")
        finally:
            await self.clients.release()
            if not self.clients.out_of_step:
                await self.clients.audience_close()
            self.stop_server(server)

    async def audience_run(self, server: Server, post, n: int, phase: str) -> dict:
        """One minute (or `--audience-seconds`) of chat at 1 message/s to `n` viewers."""
        self.run_id += 1
        run = self.run_id
        await self.clients.reset(run)
        offset = server.log_size()
        meter = self.meter(server).start()
        started = time.monotonic()
        poster = Poster(server.port, post, timeout=10.0)
        try:
            posts = await poster.run(run, 1.0, max(1, int(round(self.args.audience_seconds))))
        finally:
            poster.close()
        ok = sum(1 for p in posts if 200 <= p[4] < 300)
        deadline = time.monotonic() + self.args.audience_drain
        while time.monotonic() < deadline:
            if (await self.clients.status())["deliveries"] >= ok * n:
                break
            await asyncio.sleep(0.1)
        wall = time.monotonic() - started
        cpu = self.record_cpu(phase, meter.stop())
        collected, tally = await self.clients.audience_collect()
        result = stats.analyze_posts(posts, collected, n)
        count = max(len(posts), 1)
        worker_cores = sum(v for k, v in cpu["cores"].items() if k.startswith("worker"))
        out = {
            "posts": len(posts),
            "posts_ok": ok,
            "deliveries": tally["events"],
            "deliveries_per_message": round(tally["events"] / count, 1),
            "kb_per_message": round(collected["received"] / count / 1000, 1),
            "message_ms": result["fanout_ms"],
            "messages_missing": result["lost"],
            "post_ms": result["post_ms"],
            "post_5xx": sum(1 for p in posts if p[4] >= 500),
            "failed_posts": result["failed_posts"],
            "cpu_s_per_message": round(worker_cores * wall / count, 3),
            "worker_cores": round(worker_cores, 3),
            "dropped_streams": collected["dropped"],
            "log_offset": offset,
            "cpu": cpu,
        }
        self.audience_answers(out, tally, server)
        return out

    @staticmethod
    def audience_answers(out: dict, tally: dict, server: Server) -> None:
        """The pages' requests of a run and their answers, 5xx, and the errors the server logged."""
        count = max(out["posts"], 1)
        statuses = {int(k): v for k, v in tally["status"].items()}
        out.update({
            "requests": tally["requests"],
            "requests_per_message": round(tally["requests"] / count, 2),
            "requests_by_kind": dict(tally["by_kind"]),
            "request_status": statuses,
            "request_failures": tally["failed"],
            "request_ms": stats.summary(tally["ms"]),
            "loop_capped": tally["loop_capped"],
            "http_5xx": out["post_5xx"] + sum(v for k, v in statuses.items() if k >= 500),
            "server_errors": server.errors_since(out["log_offset"]),
        })

    @staticmethod
    async def log_quiet(server: Server, offset: int, limit: float = 30.0) -> float:
        """Wait until the server has logged no new error for 2 s (errors caused by the viewers
        joining, such as presence callbacks, are not the next run's), at most `limit` seconds."""
        started, last, calm = time.monotonic(), None, 0
        while time.monotonic() - started < limit and calm < 2:
            found = server.errors_since(offset)
            now = found["tracebacks"] + found["error_lines"]
            calm = calm + 1 if now == last else 0
            last = now
            await asyncio.sleep(1.0)
        return round(time.monotonic() - started, 1)

    async def drain_requests(self, limit: float = 30.0) -> float:
        """After the reactions stop, wait until the viewers' requests already sent are answered."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if (await self.clients.status())["inflight"] == 0:
                break
            await asyncio.sleep(0.2)
        return round(time.monotonic() - started, 1)

    # -- profiling -------------------------------------------------------------------------------

    def start_profile(self, server: Server, seconds: float) -> list:
        spy = Path(sys.executable).with_name("py-spy")
        if not spy.exists():
            log("py-spy is not installed (requirements-bench.txt); no profile")
            return []
        running = []
        for pid in server.workers:
            out = RESULTS / f"{self.stamp}-profile-worker{pid}.txt"
            argv = [str(spy), "record", "--format", "raw", "--rate", "100", "--nonblocking",
                    "--duration", str(int(seconds)), "--pid", str(pid), "--output", str(out)]
            running.append((procs.Proc(f"py-spy {pid}", argv, env=dict(os.environ), cwd=ROOT,
                                       log=self.work / f"py-spy-{pid}.log"), out))
        return running

    def finish_profile(self, running: list) -> None:
        for proc, out in running:
            try:
                proc.popen.wait(30)
            except subprocess.TimeoutExpired:
                pass
            proc.stop()
            if out.exists():
                self.profile_files.append(str(out.relative_to(ROOT)))


def held_ok(result: dict, whole: bool = True) -> bool:
    """The issue's bar for a rate being held: POST p99 < 50 ms, fan-out p99 < 500 ms, nothing
    lost, no growing backlog."""
    post, fanout = result["post_ms"]["p99"], result["fanout_ms"]["p99"]
    ok = post is not None and post < 50 and fanout is not None and fanout < 500 and result["lost"] == 0
    if whole:
        ok = ok and not result.get("backlog_growing") and not result.get("failed_posts")
    return ok


def fanout_ok(result: dict) -> bool:
    """The fan-out side of `held_ok` alone: fan-out p99 < 500 ms, nothing lost, no growing backlog."""
    fanout = result["fanout_ms"]["p99"]
    return fanout is not None and fanout < 500 and result["lost"] == 0 and not result.get("backlog_growing")


def strip(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("backlog",)}


def num1(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def fmt_ms(value) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"
