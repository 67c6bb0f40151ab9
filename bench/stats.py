"""Turning raw timings into figures: percentiles, fan-out runs, heartbeat bursts, medians."""

from __future__ import annotations

import statistics
from collections import Counter

import numpy as np

MS = 1e6  # nanoseconds per millisecond


def pct(values, q: float) -> float | None:
    if values is None or len(values) == 0:
        return None
    return round(float(np.percentile(values, q)), 3)


def summary(values_ms) -> dict:
    """p50, p99 and max of a list of milliseconds (None when empty)."""
    values_ms = np.asarray(values_ms, dtype=float)
    return {
        "p50": pct(values_ms, 50),
        "p99": pct(values_ms, 99),
        "max": round(float(values_ms.max()), 3) if len(values_ms) else None,
        "count": int(len(values_ms)),
    }


def merge_collected(parts: list[dict]) -> dict:
    """The client processes' `collect` answers as one set of numpy arrays and counters."""
    def cat(key):
        arrays = [np.frombuffer(p[key], dtype=np.int64) for p in parts]
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)

    return {
        "seqs": cat("seqs"),
        "arrived": cat("arrived"),
        "sent": cat("sent"),
        "hb_idx": cat("hb_idx"),
        "hb_ns": cat("hb_ns"),
        **{k: sum(p[k] for p in parts) for k in ("duplicates", "stale", "dropped", "other_events", "received", "open")},
    }


def analyze_posts(posts: list, collected: dict, streams: int, *, windows: int = 1) -> dict:
    """Figures for one posting run: POST latency, fan-out latency, losses, rate, backlog.

    `posts` are (seq, intended, sent, answered, status) from the poster; latencies count from
    the intended send time (open loop). `streams` is how many streams were open throughout.
    """
    if not posts:
        return {"posts": 0}
    table = np.array([p[:4] for p in posts], dtype=np.int64)
    status = np.array([p[4] for p in posts])
    seq, intended, answered = table[:, 0], table[:, 1], table[:, 3]
    ok = (status >= 200) & (status < 300)
    span_s = max((intended.max() - intended.min()) / 1e9, 1e-9) if len(posts) > 1 else 1.0
    rate = (len(posts) - 1) / span_s if len(posts) > 1 else 0.0

    max_seq = int(seq.max()) + 1
    answered_by_seq = np.zeros(max_seq, dtype=np.int64)
    answered_by_seq[seq] = answered
    ok_by_seq = np.zeros(max_seq, dtype=bool)
    ok_by_seq[seq] = ok

    got_seq = collected["seqs"]
    inside = got_seq < max_seq
    got_seq, arrived, sent = got_seq[inside], collected["arrived"][inside], collected["sent"][inside]
    delivered_ok = ok_by_seq[got_seq]
    from_send = (arrived - sent) / MS
    from_answer = (arrived - answered_by_seq[got_seq]) / MS
    # From the message's first arrival at any stream: the fan-out alone, whatever the POST took.
    first = np.full(max_seq, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, got_seq, arrived)
    spread = (arrived - first[got_seq]) / MS

    def figures(mask_posts, mask_deliveries) -> dict:
        n_ok = int(np.count_nonzero(ok & mask_posts))
        delivered = int(np.count_nonzero(delivered_ok & mask_deliveries))
        window_s = max(n_ok, 1) / rate if rate else span_s
        out = {
            "posts": int(np.count_nonzero(mask_posts)),
            "posts_ok": n_ok,
            "post_ms": summary((answered[mask_posts & ok] - intended[mask_posts & ok]) / MS),
            "fanout_ms": summary(from_send[mask_deliveries]),
            "fanout_from_response_ms": summary(from_answer[mask_deliveries & delivered_ok]),
            "spread_ms": summary(spread[mask_deliveries]),
            "deliveries": delivered,
            "lost": max(streams * n_ok - delivered, 0),
            "deliveries_per_s": round(delivered / window_s, 1) if window_s else None,
        }
        return out

    all_posts = np.ones(len(posts), dtype=bool)
    all_deliveries = np.ones(len(got_seq), dtype=bool)
    result = figures(all_posts, all_deliveries)
    result["rate"] = round(rate, 2)
    result["failed_posts"] = dict(Counter(int(s) for s in status[~ok]))
    result["duplicates"] = collected["duplicates"]
    result["dropped_streams"] = collected["dropped"]
    result["stale"] = collected["stale"]

    # A growing backlog: the last third of the posts waits clearly longer than the first.
    order = np.argsort(seq)
    thirds = np.array_split(seq[order], 3)
    if len(posts) >= 6 and len(got_seq):
        first = np.isin(got_seq, thirds[0])
        last = np.isin(got_seq, thirds[-1])
        p50_first, p50_last = pct(from_send[first], 50), pct(from_send[last], 50)
        result["backlog"] = {"first_third_p50_ms": p50_first, "last_third_p50_ms": p50_last}
        result["backlog_growing"] = bool(
            p50_first is not None and p50_last is not None and p50_last > 2 * p50_first + 50
        )
    else:
        result["backlog_growing"] = False

    if windows > 1:
        result["windows"] = []
        for part in np.array_split(seq[order], windows):
            mask_posts = np.isin(seq, part)
            mask_deliveries = np.isin(got_seq, part)
            result["windows"].append(figures(mask_posts, mask_deliveries))
    return result


def heartbeat_lag(hb_idx, hb_ns, worker_of: dict, interval: float) -> dict:
    """How late keep-alives reach a worker's streams.

    Per worker, each burst (one tick of the server's keep-alive) is timed from its first
    arrival; only bursts that reached nearly all of the worker's streams count. Round k is the
    k-th complete burst of every worker; `p99` is the median over rounds of each round's p99,
    `max` the largest lag seen. Milliseconds.
    """
    by_worker: dict[int, list] = {}
    for idx, ns in zip(hb_idx.tolist(), hb_ns.tolist()):
        worker = worker_of.get(idx)
        if worker is not None:
            by_worker.setdefault(worker, []).append(ns)
    counts = Counter(worker_of.values())
    rounds: list[list] = []
    per_worker, incomplete = {}, []
    for worker, times in by_worker.items():
        times = np.sort(np.array(times, dtype=np.int64))
        cuts = np.nonzero(np.diff(times) > interval * 0.4 * 1e9)[0] + 1
        complete = 0
        for burst in np.split(times, cuts):
            spread = (burst - burst[0]) / MS
            if len(burst) >= 0.98 * counts[worker]:
                if len(rounds) <= complete:
                    rounds.append([])
                rounds[complete].append(spread)
                complete += 1
            else:
                incomplete.append(float(spread.max()))
        per_worker[str(worker)] = complete
    full = [np.concatenate(r) for r in rounds if len(r) == len(counts)]
    if not full:
        return {"p99": None, "max": None, "rounds": 0, "bursts": per_worker,
                "partial_max": max(incomplete, default=None)}
    return {
        "p99": round(statistics.median(pct(r, 99) for r in full), 3),
        "round_p99s": [pct(r, 99) for r in full],
        "max": round(max(float(r.max()) for r in full), 3),
        "rounds": len(full),
        "bursts": per_worker,
    }


def slope(xs, ys) -> float | None:
    """Least-squares slope of ys against xs."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


def median_of(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# Counts of things that must not happen: any repetition's count shows, not the median's.
WORST_OF = {"lost", "duplicates", "dropped_streams", "open_failures", "stale"}


def median_dict(reps: list[dict]) -> dict:
    """Key by key, the median of the repetitions' numbers (nested dicts too); for the counts in
    WORST_OF, the largest."""
    if not reps:
        return {}
    out = {}
    for key in reps[0]:
        values = [r.get(key) for r in reps]
        if key in WORST_OF and all(isinstance(v, (int, float)) for v in values if v is not None):
            out[key] = max((v for v in values if v is not None), default=None)
        elif all(isinstance(v, dict) for v in values if v is not None) and any(isinstance(v, dict) for v in values):
            out[key] = median_dict([v for v in values if v is not None])
        elif all(isinstance(v, bool) for v in values if v is not None) and any(v is not None for v in values):
            out[key] = any(values)
        elif all(isinstance(v, (int, float)) for v in values if v is not None):
            m = median_of(values)
            out[key] = round(m, 3) if isinstance(m, float) else m
        else:
            out[key] = values[0]
    return out
