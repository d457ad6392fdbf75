"""A ``distributed`` worker plugin that loads a method's model once per worker process.

Imported only when a cluster is in use. The plugin carries the (small) method object, never weights:
each worker builds its own runner from the checkpoint path, so every worker must see the checkpoint
under the same absolute path. Later tasks of that method on the worker find the runner in the
process-wide cache.
"""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from orpam_pipeline.register.base import RegistrationMethod


class MethodPreload(WorkerPlugin):
    """Calls ``method.preload(threads)`` on every worker, now and on workers that join later."""

    def __init__(self, method: RegistrationMethod) -> None:
        self.method = method

    def setup(self, worker: Any) -> None:
        self.method.preload(int(getattr(worker.state, "nthreads", 1) or 1))


def plugin_name(method: RegistrationMethod) -> str:
    """One plugin per method and parameters, so registering it again for the next scan loads nothing."""
    from dask.base import tokenize

    return f"orpam-preload-{method.name}-{tokenize(method.params())}"


def preload_on_workers(client: Any, method: RegistrationMethod) -> None:
    """Register the preload plugin for ``method`` on every worker of ``client``'s cluster."""
    client.register_plugin(MethodPreload(method), name=plugin_name(method))
