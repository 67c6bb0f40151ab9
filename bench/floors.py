"""The floors under everything: a bare Redis PUBLISH -> SUBSCRIBE loop and a pgbench INSERT."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.stats import MS, summary


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def _read_message(reader) -> bytes:
    """One pub/sub push: *3 $7 message $n channel $m payload."""
    await reader.readline()  # *3
    for _ in range(2):
        size = int((await reader.readline())[1:])
        await reader.readexactly(size + 2)
    size = int((await reader.readline())[1:])
    return (await reader.readexactly(size + 2))[:-2]


async def redis_loop(host: str, port: int, channel: str, payload_bytes: int, *, count: int, burst: int,
                     seconds: float) -> dict:
    """Round trips of one message at a time (latency), then a pipelined burst (messages/s).

    Raw sockets and RESP, no client library: the least any Redis fan-out pays.
    """
    name = channel.encode()
    sub_reader, sub_writer = await asyncio.open_connection(host, port)
    pub_reader, pub_writer = await asyncio.open_connection(host, port)
    try:
        sub_writer.write(_command(b"SUBSCRIBE", name))
        for _ in range(6):  # *3 $9 subscribe $n channel :1
            if (await asyncio.wait_for(sub_reader.readline(), 5)).startswith(b":"):
                break
        latencies = []
        deadline = time.monotonic() + seconds
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            sent = time.monotonic_ns()
            payload = str(sent).encode().ljust(payload_bytes, b"x")
            pub_writer.write(_command(b"PUBLISH", name, payload))
            await asyncio.wait_for(pub_reader.readline(), 5)
            await asyncio.wait_for(_read_message(sub_reader), 5)
            latencies.append((time.monotonic_ns() - sent) / MS)

        payload = b"x" * payload_bytes
        started = time.monotonic()
        batch = _command(b"PUBLISH", name, payload) * 500
        for _ in range(burst // 500):
            pub_writer.write(batch)
        received = 0
        try:
            async with asyncio.timeout(seconds):
                while received < burst // 500 * 500:
                    await _read_message(sub_reader)
                    received += 1
        except TimeoutError:
            pass
        elapsed = time.monotonic() - started
        return {
            "round_trip_ms": summary(latencies),
            "burst_messages": received,
            "burst_messages_per_s": round(received / elapsed, 1),
            "payload_bytes": payload_bytes,
        }
    finally:
        sub_writer.transport.abort()
        pub_writer.transport.abort()


def pgbench_insert(dbname: str, *, host: str, port: int, user: str, seconds: float,
                   new_connection: bool = False) -> dict:
    """Latency of a single-row INSERT, one client, as fast as it goes (per-transaction log)."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        script = Path(tmp) / "insert.sql"
        script.write_text(
            "INSERT INTO bench_insert (body, created) VALUES ('BQ0R0T0E a chat message of ordinary size', now());\n"
        )
        argv = [
            "pgbench", "-h", host, "-p", str(port), "-U", user, "-n", "-c", "1", "-j", "1",
            "-T", str(max(1, int(seconds))), "-f", str(script), "-l", "--log-prefix", f"{tmp}/log", dbname,
        ]
        if new_connection:
            argv.insert(-1, "-C")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, cwd=tmp)
        if done.returncode != 0:
            return {"error": done.stderr.strip()[-500:]}
        latencies = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3:
                    latencies.append(int(fields[2]) / 1000)
        result = summary(np.array(latencies))
        result["tps"] = round(len(latencies) / max(seconds, 1), 1)
        result["new_connection_each"] = new_connection
        return result
