"""gunicorn worker class: uvicorn with a bounded graceful shutdown.

Event streams never finish by themselves, so without a limit a restart would wait on them
until gunicorn's own timeout killed the worker. Pages reconnect and replay what they missed.
"""

from uvicorn_worker import UvicornWorker as BaseUvicornWorker


class UvicornWorker(BaseUvicornWorker):
    CONFIG_KWARGS = {**BaseUvicornWorker.CONFIG_KWARGS, "timeout_graceful_shutdown": 5}
