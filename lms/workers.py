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
    CONFIG_KWARGS = {**BaseUvicornWorker.CONFIG_KWARGS, "timeout_graceful_shutdown": 5}

    @classmethod
    def check_config(cls, cfg, log) -> None:
        """Run by gunicorn's master before it starts any worker: a RuntimeError stops it, with
        the message on standard error, instead of serving with processes that cannot talk."""
        parent = getattr(super(), "check_config", None)
        if parent is not None:
            parent(cfg, log)
        if cfg.workers > 1 and not os.environ.get("REDIS_URL", "").strip():
            raise RuntimeError(TOO_MANY_WITHOUT_REDIS.format(workers=cfg.workers))
