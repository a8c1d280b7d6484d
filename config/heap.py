"""Keep the cyclic garbage collector off the start-up heap.

A long-running process (daphne, a Celery worker) holds a few hundred thousand long-lived objects from
its imports: Django, DRF, agno, openai. A full collection walks all of them, about 100 ms on these
machines, and it stalls every thread of the process while it runs. `settle()` imports the hot modules
at start-up and moves everything alive into the permanent generation (`gc.freeze()`), so collections
only walk what requests and runs allocate.
"""

from __future__ import annotations

import gc
import importlib
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

# Imported lazily on the first request or run otherwise: loading them now puts them in the frozen heap.
HOT_MODULES = (
    "agents.api.runs",
    "agents.runtime.executor",
    "agents.runtime.builder",
    "agents.runtime.providers",
    "agents.tasks",
    "workflows.tasks",
    "agno.agent",
    "agno.team",
    "agno.models.openai",
    "openai",
)


def settle() -> None:
    """Preload the hot modules and freeze what is alive. Off with GC_FREEZE=false."""
    if not settings.GC_FREEZE:
        return
    for name in HOT_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # pragma: no cover - an optional provider missing must not stop start-up
            logger.warning("could not preload %s", name, exc_info=True)
    gc.collect()
    gc.freeze()
