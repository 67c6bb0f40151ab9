"""gunicorn worker class: uvicorn with a bounded graceful shutdown, refusing to run as several
processes without Redis.

Event streams never finish by themselves, so without a limit a restart would wait on them
until gunicorn's own timeout killed the worker. Pages reconnect and replay what they missed.
"""

import os

from uvicorn_worker import UvicornWorker as BaseUvicornWorker

TOO_MANY_WITHOUT_REDIS = (
    "{workers} worker processes need REDIS_URL. Without Redis, typing, presence, viewer counts, "
    "the per-user stream limit, rate limits and live delivery each stay within one process, so "
    "people on different workers would not see each other. Set REDIS_URL, or run one worker "
    "(WEB_CONCURRENCY=1, or --workers 1)."
)


class UvicornWorker(BaseUvicornWorker):
    CONFIG_KWARGS = {
        **BaseUvicornWorker.CONFIG_KWARGS,
        "timeout_graceful_shutdown": 5,
        # h11 always, even where httptools is installed: its cap on an unfinished request line
        # and headers (16 KB, ample for our cookies) is what refuses oversized headers.
        "http": "h11",
        "h11_max_incomplete_event_size": 16 * 1024,
        # An idle kept-alive connection is closed after this; longer than the idle timeout of
        # the proxy in front (nginx's upstream keepalive_timeout, 60 s), so the proxy, not the
        # app, closes it and never sends a request on a connection the app is closing.
        # gunicorn's own --keep-alive (2 s) would be shorter. uvicorn times out nothing else:
        # half-sent headers and stalled readers are the proxy's (docs/deployment.md).
        "timeout_keep_alive": 75,
    }

    @classmethod
    def check_config(cls, cfg, log) -> None:
        """Run by gunicorn's master before it starts any worker: a RuntimeError stops it, with
        the message on standard error, instead of serving with processes that cannot talk."""
        parent = getattr(super(), "check_config", None)
        if parent is not None:
            parent(cfg, log)
        if cfg.workers > 1 and not os.environ.get("REDIS_URL", "").strip():
            raise RuntimeError(TOO_MANY_WITHOUT_REDIS.format(workers=cfg.workers))
