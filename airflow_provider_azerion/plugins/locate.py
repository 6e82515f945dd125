"""From a task instance in Airflow's metadata DB to its output folder.

The folder follows from the task instance's *rendered* ``output_path`` and ``output_conn_id``
(Airflow's rendered task instance fields, stored when a try starts) and the folder layout the
operator writes (:func:`airflow_provider_azerion.layout.task_segments`). A task instance that
never rendered has no folder yet, unless its DAG gives ``output_path`` without any template, in
which case the folder is known all the same. Which tasks are Azerion tasks: :mod:`.task_facts`.

Everything here runs on the API server, inside a request, with the request's DB session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.plugins.task_facts import TASK_FACTS, TaskFacts

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import ObjectStoragePath
    from sqlalchemy.orm import Session

_TEMPLATE_MARKERS = ("{{", "{%", "{#")
#: How long the file routes remember a task instance's folder, and how many they remember.
FOLDER_TTL = 10.0
MAX_REMEMBERED_FOLDERS = 1024
_folders: dict[tuple[str, str, str, int], tuple[float, ObjectStoragePath]] = {}
_folders_lock = threading.Lock()


class NotFound(LookupError):
    """What a request names is not there (the routes answer 404 with this message)."""


@dataclass(frozen=True)
class Location:
    """Where a task instance's images are, or why that is not known.

    :param folder: the task instance's folder; ``None`` when it is not known.
    :param problem: why it is not known.
    :param reason: the same as a short code (``not-rendered``, ``unusable-location``), for pages.
    :param note: a remark about how it was found (e.g. without rendered arguments).
    """

    folder: ObjectStoragePath | None
    problem: str | None = None
    reason: str | None = None
    note: str | None = None


def get_dag_run(session: Session, dag_id: str, run_id: str) -> DagRun | None:
    """The DAG run, or ``None``."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    return session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def get_task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> TaskInstance | None:
    """One task instance, or ``None``."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    return session.scalar(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    )


def get_task_instances(
    session: Session, dag_id: str, run_id: str, task_id: str | None = None
) -> list[TaskInstance]:
    """Task instances of a run (of one task when ``task_id`` is given), by task id and map index."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    query = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    if task_id is not None:
        query = query.where(TaskInstance.task_id == task_id)
    return list(session.scalars(query.order_by(TaskInstance.task_id, TaskInstance.map_index)))


def get_rendered_fields(
    session: Session, dag_id: str, run_id: str, task_id: str | None = None
) -> dict[tuple[str, int], Mapping[str, Any]]:
    """Rendered template fields of a run's task instances, by ``(task_id, map_index)``."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from sqlalchemy import select

    query = select(Rendered.task_id, Rendered.map_index, Rendered.rendered_fields).where(
        Rendered.dag_id == dag_id, Rendered.run_id == run_id
    )
    if task_id is not None:
        query = query.where(Rendered.task_id == task_id)
    return {(row[0], row[1]): row[2] or {} for row in session.execute(query)}


def locate(ti: TaskInstance, facts: TaskFacts, rendered: Mapping[str, Any] | None) -> Location:
    """The folder of an Azerion task instance, from its rendered arguments.

    :param ti: the task instance.
    :param facts: what the serialized DAG says about its task.
    :param rendered: its rendered template fields; ``None`` when Airflow has none.
    """
    from airflow_provider_azerion.exceptions import AzerionError
    from airflow_provider_azerion.layout import task_segments
    from airflow_provider_azerion.redact import public_uri
    from airflow_provider_azerion.storage import resolve_output_root

    note = None
    if rendered is not None and rendered.get("output_path"):
        output_path, conn_id = rendered.get("output_path"), rendered.get("output_conn_id")
    elif _is_plain(facts.output_path) and (facts.output_conn_id is None or _is_plain(facts.output_conn_id)):
        output_path, conn_id = facts.output_path, facts.output_conn_id
        note = (
            "Airflow holds no rendered arguments for this task instance (it has not started yet, or "
            "they were deleted with older runs); the folder follows from the DAG's output_path, "
            "which has no template."
        )
    else:
        return Location(
            None,
            reason="not-rendered",
            problem=(
                "This task instance has not rendered its arguments yet (it has not started), or Airflow "
                "deleted them with older runs ([core] max_num_rendered_ti_fields_per_task): its templated "
                "output_path, and so its folder, is not known."
            ),
        )
    try:
        root = resolve_output_root(output_path, conn_id if isinstance(conn_id, str) and conn_id else None)
    except (AzerionError, ValueError, TypeError) as err:
        # The message quotes output_path, which may name a connection ("s3://conn@bucket/").
        message = str(err).replace(str(output_path), public_uri(str(output_path)))
        return Location(
            None,
            reason="unusable-location",
            problem=f"The task's output_path is not a usable location: {message}",
        )
    return Location(root.joinpath(*task_segments(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)), note=note)


def task_folder(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> ObjectStoragePath:
    """An Azerion task instance's folder, for the file routes; remembered for a few seconds.

    A page's hundred thumbnail requests would otherwise look it up a hundred times (three
    queries each). Access is checked on every request before this; only the location is kept.
    (Not ``functools.lru_cache``: entries expire, and the DB session is no part of the key.)

    :raises NotFound: when there is no such task instance, it is not an Azerion task, or its
        folder is not known.
    """
    key = (dag_id, run_id, task_id, map_index)
    now = time.monotonic()
    with _folders_lock:
        cached = _folders.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
    ti = get_task_instance(session, dag_id, run_id, task_id, map_index)
    if ti is None:
        raise NotFound(f"No task instance {task_id} (map index {map_index}) in run {run_id} of {dag_id}.")
    facts = TASK_FACTS.for_task_instance(session, ti, None)
    if facts is None or not facts.is_azerion:
        raise NotFound(f"{task_id} is not an ImageGenerationOperator task.")
    rendered = get_rendered_fields(session, dag_id, run_id, task_id).get((task_id, map_index))
    location = locate(ti, facts, rendered)
    if location.folder is None:
        raise NotFound(location.problem or "The task instance's folder is not known.")
    with _folders_lock:
        if len(_folders) >= MAX_REMEMBERED_FOLDERS:
            _folders.clear()
        _folders[key] = (now + FOLDER_TTL, location.folder)
    return location.folder


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a non-empty str without Jinja markers (it renders to itself)."""
    return isinstance(value, str) and bool(value.strip()) and not any(m in value for m in _TEMPLATE_MARKERS)
