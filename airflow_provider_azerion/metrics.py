"""The ``azerion.*`` metrics: spend and health, through Airflow's own ``Stats``.

Counted where they happen, in the task's own process on whichever worker runs it, and sent to
whatever the deployment's ``[metrics]`` section configures (StatsD, Datadog's DogStatsD or
OpenTelemetry); with metrics off they cost a no-op call.

==============================  ========  ================================================
Name                            Kind      What
==============================  ========  ================================================
``azerion.generations``         counter   generation requests the API answered (each is paid)
``azerion.images``              counter   images stored
``azerion.bytes``               counter   bytes of the images stored
``azerion.tokens``              counter   ``usage.total_tokens`` as the API reported it
``azerion.prompts_resumed``     counter   prompts an earlier try had stored (not paid again)
``azerion.rate_limited``        counter   429 answers received
``azerion.retries``             counter   requests sent again by the hook
``azerion.generation_seconds``  timer     time from request to checked images, per prompt
==============================  ========  ================================================

Each carries the tags ``dag_id``, ``task_id`` and ``model`` where the backend takes tags
(DogStatsD, OpenTelemetry, StatsD with InfluxDB tags on).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

PREFIX = "azerion"


@functools.cache
def _stats() -> Any:
    """Airflow's ``Stats`` (imported on first use: a DAG file's import never pays for it)."""
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # pragma: no cover - an Airflow without the Task SDK's stats
        from airflow.stats import Stats  # type: ignore[no-redef]
    return Stats


@dataclass(frozen=True)
class TaskMetrics:
    """The metrics of one task instance's work.

    :param dag_id: tag of every metric.
    :param task_id: tag of every metric.
    :param model: tag of every metric.
    """

    dag_id: str = ""
    task_id: str = ""
    model: str = ""
    tags: dict[str, str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "tags", {"dag_id": self.dag_id, "task_id": self.task_id, "model": self.model}
        )

    def _incr(self, name: str, count: int = 1) -> None:
        if count:
            try:
                _stats().incr(f"{PREFIX}.{name}", count, 1, tags=self.tags)
            except Exception:  # a metrics backend must never fail a paid generation
                return

    def generation(self, seconds: float) -> None:
        """One generation answered, after ``seconds``."""
        self._incr("generations")
        try:
            # A timedelta: every backend converts it to its own unit (StatsD and OTel: milliseconds).
            _stats().timing(f"{PREFIX}.generation_seconds", timedelta(seconds=seconds), tags=self.tags)
        except Exception:
            return

    def stored(self, images: int, size: int, tokens: int) -> None:
        """One prompt stored: its images, their bytes, and the tokens its generation used."""
        self._incr("images", images)
        self._incr("bytes", size)
        self._incr("tokens", tokens)

    def resumed(self, prompts: int) -> None:
        """``prompts`` found stored by an earlier try."""
        self._incr("prompts_resumed", prompts)

    def rate_limited(self) -> None:
        """One 429 received."""
        self._incr("rate_limited")

    def retried(self) -> None:
        """One request about to be sent again."""
        self._incr("retries")
