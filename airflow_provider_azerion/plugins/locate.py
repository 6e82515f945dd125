"""From a task instance in Airflow's metadata DB to its output folder.

Which tasks are Azerion tasks comes from the serialized DAG of the version the task instance ran
(its class and module, as the DAG processor recorded them). The folder follows from the task
instance's *rendered* ``output_path`` and ``output_conn_id`` (Airflow's rendered task instance
fields, stored when a try starts) and the layout the operator writes
(:class:`~airflow_provider_azerion.outputs.OutputFolder`). A task instance that never rendered
has no folder yet, unless its DAG gives ``output_path`` without any template, in which case the
folder is known all the same.

Everything here runs on the API server, inside a request, with the request's DB session.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import ObjectStoragePath
    from sqlalchemy.orm import Session

#: The operator the Images tab shows, as serialized DAGs name it.
AZERION_TASK_TYPE = "ImageGenerationOperator"
AZERION_TASK_MODULE = "airflow_provider_azerion.operators.image_generation"
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


@dataclass(frozen=True)
class TaskFacts:
    """What the serialized DAG says about one task.

    :param task_type: the operator's class name.
    :param operator_name: what the UI calls it (``@task`` for a decorated task).
    :param is_azerion: whether it is an ``ImageGenerationOperator``.
    :param output_path: the DAG's own ``output_path`` (before rendering); ``None`` when the task
        is mapped over it.
    :param output_conn_id: likewise for ``output_conn_id``.
    """

    task_type: str | None
    operator_name: str | None
    is_azerion: bool
    output_path: Any = None
    output_conn_id: Any = None


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


class TaskFactsCache:
    """Facts about the tasks of DAG versions, read once per version (thread-safe, LRU).

    Deserializing a DAG is costly and a version never changes, so only the few facts the tab
    needs are kept, not the DAG.

    :param max_versions: how many DAG versions to remember.
    """

    def __init__(self, max_versions: int = 256) -> None:
        self.max_versions = max_versions
        self._versions: OrderedDict[Any, dict[str, TaskFacts]] = OrderedDict()
        self._lock = threading.Lock()

    def for_task_instance(
        self, session: Session, ti: TaskInstance, dag_run: DagRun | None
    ) -> TaskFacts | None:
        """Facts about the task of ``ti``, from the DAG version it ran (else its run's, else the latest)."""
        version_id = ti.dag_version_id or (dag_run.created_dag_version_id if dag_run else None)
        tasks = self._tasks(session, ti.dag_id, version_id)
        return tasks.get(ti.task_id)

    def _tasks(self, session: Session, dag_id: str, version_id: Any) -> dict[str, TaskFacts]:
        if version_id is None:
            return _read_task_facts(session, dag_id, None)  # "the latest" changes: never cached
        # A DAG version is rewritten in place while no task ran it yet: its hash tells.
        key = (version_id, _dag_hash(session, version_id))
        with self._lock:
            tasks = self._versions.get(key)
            if tasks is not None:
                self._versions.move_to_end(key)
                return tasks
        tasks = _read_task_facts(session, dag_id, version_id)
        with self._lock:
            self._versions[key] = tasks
            while len(self._versions) > self.max_versions:
                self._versions.popitem(last=False)
        return tasks


def _dag_hash(session: Session, version_id: Any) -> str | None:
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    return session.scalar(
        select(SerializedDagModel.dag_hash).where(SerializedDagModel.dag_version_id == version_id)
    )


def _read_task_facts(session: Session, dag_id: str, version_id: Any) -> dict[str, TaskFacts]:
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel

    serialized = None
    if version_id is not None:
        version = session.get(DagVersion, version_id)
        serialized = version.serialized_dag if version else None
    if serialized is None:
        serialized = SerializedDagModel.get(dag_id, session=session)
    if serialized is None:
        return {}
    serialized.load_op_links = False  # links need plugins and hooks; the tab needs neither
    return {task.task_id: _facts(task) for task in serialized.dag.tasks}


def _facts(task: Any) -> TaskFacts:
    task_type = getattr(task, "task_type", None)
    name = getattr(task, "operator_name", None) or task_type
    is_azerion = task_type == AZERION_TASK_TYPE and getattr(task, "_task_module", None) == AZERION_TASK_MODULE
    if not is_azerion:
        return TaskFacts(task_type, name, False)
    partial_kwargs = getattr(task, "partial_kwargs", None)
    if isinstance(partial_kwargs, Mapping):  # a mapped task: unmapped arguments are partial ones
        path, conn_id = partial_kwargs.get("output_path"), partial_kwargs.get("output_conn_id")
    else:
        path, conn_id = getattr(task, "output_path", None), getattr(task, "output_conn_id", None)
    return TaskFacts(task_type, name, True, path, conn_id)


def locate(ti: TaskInstance, facts: TaskFacts, rendered: Mapping[str, Any] | None) -> Location:
    """The folder of an Azerion task instance, from its rendered arguments.

    :param ti: the task instance.
    :param facts: what the serialized DAG says about its task.
    :param rendered: its rendered template fields; ``None`` when Airflow has none.
    """
    from airflow_provider_azerion.exceptions import AzerionError
    from airflow_provider_azerion.outputs import OutputFolder, TaskIdentity
    from airflow_provider_azerion.plugins.gallery import public_uri
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
    identity = TaskIdentity(ti.dag_id, ti.run_id, ti.task_id, -1 if ti.map_index is None else ti.map_index)
    return Location(OutputFolder(root, identity).path, note=note)


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a non-empty str without Jinja markers (it renders to itself)."""
    return isinstance(value, str) and bool(value.strip()) and not any(m in value for m in _TEMPLATE_MARKERS)
