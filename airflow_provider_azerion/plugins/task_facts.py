"""Which tasks are Azerion tasks, and what their DAG says about ``output_path``.

The facts come from the serialized DAG of the version a task instance ran (its class and module,
as the DAG processor recorded them). Deserializing a DAG is costly and a version never changes,
so the few facts the tab needs are kept per version (:data:`TASK_FACTS`), not the DAG.

Runs on the API server, inside a request, with the request's DB session.
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
    from sqlalchemy.orm import Session

#: The operator the Images tab shows, as serialized DAGs name it.
AZERION_TASK_TYPE = "ImageGenerationOperator"
AZERION_TASK_MODULE = "airflow_provider_azerion.operators.image_generation"


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


class TaskFactsCache:
    """Facts about the tasks of DAG versions, read once per version (thread-safe, LRU).

    Not ``functools.lru_cache``: the facts are read with the request's DB session, which must not
    be part of the key (nor be kept alive by the cache).

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


#: Facts of the DAG versions this API server worker has seen.
TASK_FACTS = TaskFactsCache()


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
