"""The bench's output: a plain-text table, the JSON of everything, a chart of latency against N.

Figures only: the table compares the app with the yardstick and with the targets, and says by
how much; nothing here fails a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def ms(value) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{value:.2f} ms" if value < 1 else f"{value:.1f} ms"


def num(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(app, yard) -> str:
    if app is None or yard is None or app <= 0 or yard <= 0:
        return "-"
    return f"{app / yard:.2f}x"


def get(data, *keys):
    for key in keys:
        if data is None:
            return None
        data = data.get(key) if isinstance(data, dict) else None
    return data


def table(results: dict) -> str:
    meta = results.get("meta", {})
    figures = results.get("figures", {})
    args = meta.get("args", {})
    lines = []
    add = lines.append
    width = 100
    reps = args.get("reps")
    add("=" * width)
    add(f"Real-time benchmark, {meta.get('mode')} mode: {meta.get('started')}, "
        f"{get(meta, 'machine', 'cpus')} CPUs, {meta.get('seconds', 0) / 60:.1f} min")
    add(f"Figures are medians of {reps} repetition(s); ratio = app / yardstick. "
        f"Fragment: {meta.get('fragment_bytes')} bytes.")
    loads = [meta.get("load_average_at_start"), meta.get("load_average_at_end")]
    if all(loads):
        add(f"Load average at start {loads[0][0]:.1f}, at end {loads[1][0]:.1f} (other processes share these cores).")
    add("=" * width)

    row = "{:<52}{:>14}{:>14}{:>10}{:>10}".format
    loop = results.get("redis_loop") or {}
    pg = results.get("pgbench") or {}
    add("Floors")
    add(f"  Redis PUBLISH->SUBSCRIBE, raw sockets, one at a time: p50 {ms(get(loop, 'round_trip_ms', 'p50'))}, "
        f"p99 {ms(get(loop, 'round_trip_ms', 'p99'))}; pipelined: {num(loop.get('burst_messages_per_s'))} msg/s")
    if pg:
        tps = get(pg, "insert_new_connection", "tps")
        add(f"  pgbench single-row INSERT, 1 client: p50 {ms(get(pg, 'insert', 'p50'))}, "
            f"p99 {ms(get(pg, 'insert', 'p99'))}; with a new connection each: {num(tps)} "
            f"inserts/s (~{ms(1000 / tps) if tps else '-'} each)")

    conn = figures.get("connections")
    if conn:
        add("")
        add(f"1. Connections held: idle streams added {args['ladder'][0]:,} at a time up to {args['ladder'][1]:,}; "
            f"keep-alive every {conn.get('keepalive_seconds'):g} s, its lateness the median of "
            f"{conn.get('rounds_per_step')} round(s) per step")
        add(row("", "app", "yardstick", "ratio", ""))
        a, y = conn.get("app") or {}, conn.get("yardstick") or {}
        add(row("  KB per stream (RSS slope, mean of the 2 workers)", num(a.get("kb_per_stream"), 1),
                num(y.get("kb_per_stream"), 1), ratio(a.get("kb_per_stream"), y.get("kb_per_stream")), ""))
        add(row("  largest N with heartbeat p99 < 1 s (both workers)", num(a.get("max_n_heartbeat_under_1s")),
                num(y.get("max_n_heartbeat_under_1s")),
                ratio(a.get("max_n_heartbeat_under_1s"), y.get("max_n_heartbeat_under_1s")), ""))
        add(row("  largest N held", num(a.get("max_n_held")), num(y.get("max_n_held")), "", ""))
        for kind, side in (("app", a), ("yardstick", y)):
            if side.get("stopped") or side.get("worker_restarts"):
                add(f"  {kind}: ladder stopped at {side.get('max_n_held', 0):,} streams: {side.get('stopped') or '-'}; "
                    f"workers replaced: {side.get('worker_restarts', 0)}")
        add("  {:>8}  {:>13}  {:>22}  {:>16}  {:>12}  {:>22}  {:>7}".format(
            "N", "app split", "heartbeat p99 app/yard", "RSS MB app/yard", "idle cores", "app: opened in, quiet",
            "others"))
        add("  (others: cores used by processes outside the bench during the step's idle window)")
        yard_steps = {s["n"]: s for s in y.get("steps", [])}
        for step in a.get("steps") or y.get("steps", []):
            other = yard_steps.get(step["n"], {})
            add("  {:>8}  {:>13}  {:>22}  {:>16}  {:>12}  {:>22}  {:>7}".format(
                f"{step['n']:,}",
                str(step["split"]),
                f"{ms(get(step, 'heartbeat', 'p99'))} / {ms(get(other, 'heartbeat', 'p99'))}",
                f"{rss_mb(step)} / {rss_mb(other)}",
                f"{num(step.get('worker_cpu'), 2)} / {num(other.get('worker_cpu'), 2)}",
                f"{step['open_seconds']:.1f} s, {step.get('settle_seconds', 0):g} s",
                num(step.get("other_cores"), 2),
            ))

    fan = figures.get("fanout")
    if fan:
        add("")
        add(f"2. Fan-out latency: 1 post/s through the POST endpoint, {args['fanout_seconds']:g} s per repetition; "
            "from the POST sent to the fragment at each stream")
        add(row("", "app", "yardstick", "ratio", ""))
        base = fan.get("app") or fan.get("yardstick") or {}
        for n in sorted(base, key=int):
            a = get(fan, "app", n, "median") or {}
            y = get(fan, "yardstick", n, "median") or {}
            first = (get(fan, "app", n, "reps") or get(fan, "yardstick", n, "reps") or [{}])[0]
            add(f"  N = {int(n):,} (app: split over workers {first.get('split')}, streams ready in "
                f"{first.get('ready_seconds')} s, quiet after {first.get('settle_seconds')} s)")
            for label, keys in (
                ("    fan-out p50", ("fanout_ms", "p50")),
                ("    fan-out p99", ("fanout_ms", "p99")),
                ("    fan-out max", ("fanout_ms", "max")),
                ("    p99 from the POST's response", ("fanout_from_response_ms", "p99")),
                ("    p99 from the first stream's arrival (spread)", ("spread_ms", "p99")),
                ("    POST p50", ("post_ms", "p50")),
                ("    POST p99", ("post_ms", "p99")),
            ):
                add(row(label, ms(get(a, *keys)), ms(get(y, *keys)), ratio(get(a, *keys), get(y, *keys)), ""))
            add(row("    messages lost (worst repetition)", num(a.get("lost")), num(y.get("lost")), "", ""))
            add(row("    streams dropped by the server (worst)", num(a.get("dropped_streams")),
                    num(y.get("dropped_streams")), "", ""))
            add(row("    client CPU, cores", num(get(a, "cpu", "client_cores"), 2),
                    num(get(y, "cpu", "client_cores"), 2), "", ""))
            add(row("    other processes on the machine, cores", num(get(a, "cpu", "other_cores"), 2),
                    num(get(y, "cpu", "other_cores"), 2), "", ""))

    thr = figures.get("throughput")
    if thr:
        add("")
        add(f"3. Throughput: posts/s stepped {args['rates'][0]:g} -> {args['rates'][-1]:g} ({args['step_seconds']:g} s "
            f"a step), the best held for {args['hold_seconds']:g} s with POST p99 < 50 ms, fan-out p99 < 500 ms, "
            "nothing lost, no growing backlog")
        add(row("", "app", "yardstick", "ratio", ""))
        base = thr.get("app") or thr.get("yardstick") or {}
        for n in sorted(base, key=int):
            a, y = get(thr, "app", n, "best") or {}, get(thr, "yardstick", n, "best") or {}
            add(f"  N = {int(n):,}")
            add(row("    best rate held (posts/s)", num(a.get("rate"), 1), num(y.get("rate"), 1),
                    ratio(a.get("rate"), y.get("rate")), ""))
            add(row("    deliveries/s at that rate", num(a.get("deliveries_per_s")), num(y.get("deliveries_per_s")),
                    ratio(a.get("deliveries_per_s"), y.get("deliveries_per_s")), ""))
            add(row("    POST p99 at that rate", ms(a.get("post_p99_ms")), ms(y.get("post_p99_ms")), "", ""))
            add(row("    fan-out p99 at that rate", ms(a.get("fanout_p99_ms")), ms(y.get("fanout_p99_ms")), "", ""))
            add(row("    client CPU, cores", num(a.get("client_cores"), 2), num(y.get("client_cores"), 2), "", ""))
            fa = get(thr, "app", n, "best_fanout_only") or {}
            fy = get(thr, "yardstick", n, "best_fanout_only") or {}
            add(row("    fan-out only (POST p99 not judged): posts/s", num(fa.get("rate"), 1), num(fy.get("rate"), 1),
                    ratio(fa.get("rate"), fy.get("rate")), ""))
            add(row("      deliveries/s at that rate (one step)", num(fa.get("deliveries_per_s")),
                    num(fy.get("deliveries_per_s")), ratio(fa.get("deliveries_per_s"), fy.get("deliveries_per_s")), ""))
            first_fail = next((s for s in get(thr, "app", n, "steps") or [] if not s["held"]), None)
            if first_fail:
                add(f"    app's first rate not held: {first_fail['rate']:g}/s "
                    f"(POST p99 {ms(first_fail['post_ms']['p99'])}, "
                    f"fan-out p99 {ms(first_fail['fanout_ms']['p99'])}, lost {first_fail['lost']})")

    db = figures.get("db_connections")
    if db and db.get("idle_0", {}).get("samples"):
        add("")
        add("4. Database connections (pg_stat_activity for the bench database, once a second): open max / mean;")
        add("   in use = running a query or inside a transaction (the others wait, idle, in the app's connection pools)")
        for label, key in (("  0 streams", "idle_0"), (f"  {db.get('streams_held', 1000):,} idle streams", "idle_1000"),
                           ("  during figure 3 (app)", "throughput"),
                           ("  during figure 1, idle windows (app, up to the largest N)", "ladder_idle")):
            sample = db.get(key) or {}
            if sample.get("samples"):
                add(f"{label:<60}{sample['max']:>4} / {sample['mean']:.2f}   ({sample['samples']} samples, "
                    f"max in use {sample.get('max_in_use', sample['max_active'])}, max active {sample['max_active']})")

    post = post_latency(results)
    if post:
        add("")
        add("5. Post latency: the app's POST (N = 100, 1 post/s) against a single-row INSERT (pgbench, same run)")
        add(row("", "POST p50", "POST p99", "vs INSERT", ""))
        add(row("  app", ms(post["app_p50"]), ms(post["app_p99"]), ratio(post["app_p50"], post["insert_p50"]), ""))
        add(row("  yardstick (publish only, no database)", ms(post["yard_p50"]), ms(post["yard_p99"]), "", ""))
        add(row("  pgbench INSERT", ms(post["insert_p50"]), ms(post["insert_p99"]), "", ""))

    aud = figures.get("audience")
    if aud and aud.get("rows"):
        add("")
        add(f"6. Livestream audience: N viewers of one live stream, each a user with the stream page's own event "
            f"stream; one chat")
        add(f"   message a second for {aud['seconds']:g} s. Ideal: the viewers do nothing with what they receive. "
            f"Reacting: each page's")
        add("   reactions, read from its HTML and app.js (bench/audience.py). Ratio = reacting / ideal.")
        for line in (aud.get("table") or {}).get("reactions", []):
            add(f"     {line}")
        for n, r in sorted(aud["rows"].items(), key=lambda item: int(item[0])):
            i, a = r.get("ideal") or {}, r.get("reacting") or {}
            add(row(f"  N = {int(n):,} ({r['viewers']:,} viewers open)", "reacting", "ideal", "ratio", ""))
            for label, keys, fmt in (
                ("    deliveries per chat message", ("deliveries_per_message",), lambda v: num(v, 1)),
                ("    KB per chat message", ("kb_per_message",), lambda v: num(v, 1)),
                ("    requests the pages make per message", ("requests_per_message",), lambda v: num(v, 2)),
                ("    message p50 at the viewers", ("message_ms", "p50"), ms),
                ("    message p99 at the viewers", ("message_ms", "p99"), ms),
                ("    POST p50", ("post_ms", "p50"), ms),
                ("    POST p99", ("post_ms", "p99"), ms),
                ("    server CPU per message (workers), s", ("cpu_s_per_message",), lambda v: num(v, 3)),
                ("    messages not arrived (viewer x message)", ("messages_missing",), num),
                ("    5xx answers", ("http_5xx",), num),
            ):
                add(row(label, fmt(get(a, *keys)), fmt(get(i, *keys)), ratio(get(a, *keys), get(i, *keys)), ""))
            add(row("    server errors logged (tracebacks + ERROR lines)", num(logged(get(a, "server_errors"))),
                    num(logged(get(i, "server_errors"))), "", ""))
            for mode, side in (("reacting", a), ("ideal", i)):
                for kind, count in list((get(side, "server_errors", "kinds") or {}).items())[:2]:
                    add(f"      {mode}: {count:,} x {kind}")
            opening = logged(r.get("open_server_errors"))
            if opening or r.get("open_failures"):
                add(f"    while the viewers opened the page: {opening} server errors logged, "
                    f"{sum((r.get('open_failures') or {}).values())} pages or streams failed "
                    f"{r.get('open_failures') or ''}")
            if a.get("requests_by_kind"):
                kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(a["requests_by_kind"].items(), key=lambda x: -x[1]))
                add(f"    reacting requests: {kinds}; answers {a.get('request_status')}"
                    f"{', loop capped ' + format(a['loop_capped'], ',') + ' times' if a.get('loop_capped') else ''}")

    add("")
    add("Targets for this machine (figures, not pass/fail)")
    for line in targets(results):
        add("  " + line)
    flags = results.get("flags") or []
    cpu = results.get("cpu") or []
    if cpu:
        worst = max(cpu, key=lambda c: c["client_cores"])
        add(f"Client CPU: at most {worst['client_cores']:.2f} cores ({worst['phase']}).")
        add(f"Flags: {len(flags) or 'none'}")
        for flag in flags[:12]:
            add("  * " + flag)
        if len(flags) > 12:
            add(f"  * ... and {len(flags) - 12} more (see the JSON)")
    errors = results.get("server_errors") or {}
    for kind, found in errors.items():
        if found:
            add(f"Errors in the {kind}'s log: {sum(found.values())}")
            for message, count in sorted(found.items(), key=lambda item: -item[1])[:5]:
                add(f"  {count:>6} x {message}")
    add("=" * width)
    return "\n".join(lines)


def logged(errors: dict | None) -> int:
    return (errors or {}).get("tracebacks", 0) + (errors or {}).get("error_lines", 0)


def rss_mb(step: dict) -> str:
    values = [v for v in (step.get("rss_kb") or {}).values() if v]
    return f"{sum(values) / 1024:,.0f}" if values else "-"


def post_latency(results: dict) -> dict | None:
    fan = get(results, "figures", "fanout")
    pg = results.get("pgbench")
    if not fan or not pg or not fan.get("app"):
        return None
    n = min(fan["app"], key=int)
    return {
        "n": int(n),
        "app_p50": get(fan, "app", n, "median", "post_ms", "p50"),
        "app_p99": get(fan, "app", n, "median", "post_ms", "p99"),
        "yard_p50": get(fan, "yardstick", n, "median", "post_ms", "p50"),
        "yard_p99": get(fan, "yardstick", n, "median", "post_ms", "p99"),
        "insert_p50": get(pg, "insert", "p50"),
        "insert_p99": get(pg, "insert", "p99"),
    }


def targets(results: dict) -> list[str]:
    figures = results.get("figures", {})
    out = []
    conn = figures.get("connections")
    if conn and conn.get("app"):
        a, y = conn["app"], conn.get("yardstick") or {}
        per_worker = (a["max_n_heartbeat_under_1s"] or 0) / 2
        out.append(f"streams per worker with heartbeat p99 < 1 s: {per_worker:,.0f} (target >= 5,000)")
        out.append(f"KB per stream: {num(a['kb_per_stream'], 1)} vs yardstick {num(y.get('kb_per_stream'), 1)} = "
                   f"{ratio(a['kb_per_stream'], y.get('kb_per_stream'))} (target <= 2x)")
    fan = figures.get("fanout")
    if fan:
        for n in ("1000", "5000"):
            if n in (fan.get("app") or {}):
                a = get(fan, "app", n, "median", "fanout_ms", "p99")
                y = get(fan, "yardstick", n, "median", "fanout_ms", "p99")
                extra = " and < 1 s" if n == "5000" else ""
                out.append(f"fan-out p99 at N = {int(n):,}: {ms(a)} vs yardstick {ms(y)} = {ratio(a, y)} "
                           f"(target <= 2x{extra})")
    thr = figures.get("throughput")
    if thr:
        app = (thr.get("app") or {}).values()
        best = max((get(v, "best", "deliveries_per_s") or 0 for v in app), default=0)
        fan_only = max((get(v, "best_fanout_only", "deliveries_per_s") or 0 for v in app), default=0)
        out.append(f"deliveries per second sustained: {best:,.0f} with every criterion of figure 3; "
                   f"{fan_only:,.0f} with the fan-out's alone (target >= 10,000)")
    db = figures.get("db_connections")
    if db and get(db, "idle_1000", "samples"):
        held, none = db["idle_1000"], db.get("idle_0") or {}
        out.append(f"database connections in use by {db.get('streams_held', 1000):,} waiting streams: "
                   f"max {held.get('max_in_use', held['max_active'])} (target 0); open: max {held['max']}, "
                   f"with 0 streams max {none.get('max', '-')} (idle in the pools)")
    post = post_latency(results)
    if post and post["app_p50"] and post["insert_p50"]:
        out.append(f"POST p50 {ms(post['app_p50'])} = {post['app_p50'] / post['insert_p50']:.1f}x the INSERT "
                   f"p50 {ms(post['insert_p50'])} (target <= 20x)")
    aud = figures.get("audience")
    if aud and "1000" in aud.get("rows", {}):
        r = aud["rows"]["1000"]
        a, i = r.get("reacting") or {}, r.get("ideal") or {}
        for label, keys, limit in (("deliveries per message", ("deliveries_per_message",), 1.5),
                                   ("bytes per message", ("kb_per_message",), 1.5),
                                   ("message p99", ("message_ms", "p99"), 2.0)):
            out.append(f"audience of 1,000, {label}: reacting {ratio(get(a, *keys), get(i, *keys))} the ideal "
                       f"(target <= {limit:g}x)")
        out.append(f"audience of 1,000: {num(a.get('http_5xx'))} 5xx (target 0), {logged(a.get('server_errors'))} "
                   f"server errors logged (target 0)")
    return out


def chart(results: dict, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = results.get("figures", {})
    fan, conn = figures.get("fanout"), figures.get("connections")
    aud = (figures.get("audience") or {}).get("rows")
    if not fan and not conn and not aud:
        return False
    panels = (3 if conn else 2 if fan else 0) + (1 if aud else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.7 * panels, 4.8), squeeze=False)
    axes = list(axes[0])
    if aud:
        audience_panel(axes.pop(), aud)
    if not fan and not conn:
        return finish(fig, results, path)
    colours = {"app": "tab:red", "yardstick": "tab:blue"}
    ax = axes[0]
    if fan:
        for kind in ("app", "yardstick"):
            ns = sorted(int(n) for n in fan.get(kind, {}))
            for q, style in (("p50", "--"), ("p99", "-")):
                values = [get(fan, kind, str(n), "median", "fanout_ms", q) for n in ns]
                ax.plot(ns, values, style, marker="o", color=colours[kind], label=f"{kind} {q}")
        loop = get(results, "redis_loop", "round_trip_ms", "p50")
        if loop:
            ax.axhline(loop, color="grey", linestyle=":", label="Redis PUBLISH->SUBSCRIBE p50")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_title("Fan-out latency, 1 post/s (POST sent -> fragment at each stream)")
    ax.set_xlabel("streams (N)")
    ax.set_ylabel("ms")
    ax.grid(True, which="both", alpha=0.3)
    if fan:
        ax.legend(fontsize=8)
    ax = axes[1]
    if conn:
        for kind in ("app", "yardstick"):
            steps = (conn.get(kind) or {}).get("steps", [])
            ax.plot([s["n"] for s in steps], [get(s, "heartbeat", "p99") for s in steps], marker=".",
                    color=colours[kind], label=f"{kind} heartbeat p99")
        ax.axhline(1000, color="grey", linestyle=":", label="1 s")
        ax.set_yscale("log")
    ax.set_title("Idle streams: keep-alive lateness, p99")
    ax.set_xlabel("streams (N, both workers)")
    ax.set_ylabel("ms")
    ax.grid(True, which="both", alpha=0.3)
    if conn:
        ax.legend(fontsize=8)
    if conn:
        ax = axes[2]
        for kind in ("app", "yardstick"):
            steps = (conn.get(kind) or {}).get("steps", [])
            ax.plot([s["n"] for s in steps], [sum(v or 0 for v in s["rss_kb"].values()) / 1024 for s in steps],
                    marker=".", color=colours[kind], label=f"{kind}, both workers")
        ax.set_yscale("log")
        ax.set_title("Idle streams: worker memory (RSS)")
        ax.set_xlabel("streams (N, both workers)")
        ax.set_ylabel("MB")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return finish(fig, results, path)


def audience_panel(ax, rows: dict) -> None:
    """Figure 6: deliveries per message (left axis) and message p99 (right), reacting and ideal."""
    ns = sorted(rows, key=int)
    xs = [int(n) for n in ns]
    right = ax.twinx()
    for mode, colour in (("reacting", "tab:red"), ("ideal", "tab:blue")):
        ax.plot(xs, [get(rows[n], mode, "deliveries_per_message") for n in ns], "-", marker="o", color=colour,
                label=f"{mode}: deliveries per message")
        right.plot(xs, [get(rows[n], mode, "message_ms", "p99") for n in ns], "--", marker="s", color=colour,
                   label=f"{mode}: message p99 (ms, right)")
    for axis in (ax, right):
        axis.set_yscale("log")
    ax.set_xscale("log")
    ax.set_title("Livestream audience, 1 chat message/s: pages reacting vs ideal")
    ax.set_xlabel("viewers (N)")
    ax.set_ylabel("deliveries per chat message")
    right.set_ylabel("message p99 at the viewers, ms")
    ax.grid(True, which="both", alpha=0.3)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7)


def finish(fig, results: dict, path: Path) -> bool:
    import matplotlib.pyplot as plt

    meta = results.get("meta", {})
    fig.suptitle(f"lms real-time bench, {meta.get('mode')} mode, {meta.get('started')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write(results: dict, directory: Path, stamp: str) -> list[Path]:
    """<stamp>.json and <stamp>.png; a full run of every figure also refreshes latest.json and
    latest.png."""
    directory.mkdir(parents=True, exist_ok=True)
    results["table"] = table(results).splitlines()
    json_path = directory / f"{stamp}.json"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    paths = [json_path]
    png_path = directory / f"{stamp}.png"
    if chart(results, png_path):
        paths.append(png_path)
    if "-quick" not in stamp and "-only-" not in stamp:
        for path in list(paths):
            latest = directory / f"latest{path.suffix}"
            shutil.copyfile(path, latest)
            paths.append(latest)
    return paths
