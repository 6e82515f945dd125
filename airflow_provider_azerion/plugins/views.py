"""What the Images pages show: each task instance with what its folder holds, and a DAG run's.

Builds the views the templates render (:mod:`.pages`) from the metadata DB (:mod:`.locate`,
:mod:`.task_facts`) and the folders (:mod:`.gallery`). Runs on the API server, inside a request,
with the request's DB session; the routes (:mod:`.routes`) have checked the user already.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_azerion.plugins import gallery, locate, review_states
from airflow_provider_azerion.plugins.gallery import FolderContents, StoredImage
from airflow_provider_azerion.plugins.locate import NotFound
from airflow_provider_azerion.plugins.spend import Spend, total
from airflow_provider_azerion.plugins.task_facts import TASK_FACTS, TaskFacts

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy.orm import Session

#: Images per page of a task instance's tab.
PAGE_SIZE = 200
#: Images shown per task instance on a DAG run's page (the task instance's page shows them all).
RUN_PREVIEW = 24
#: Azerion task instances a DAG run's tab shows (each one costs a folder listing).
MAX_RUN_TASK_INSTANCES = 200
#: Folders a DAG run's tab reads at once.
FOLDER_CONCURRENCY = 8
#: Pixel sizes of images already seen by this API server worker (for sidecars without them).
DIMENSIONS = gallery.DimensionCache()


def path_segment(value: object) -> str:
    """``value`` quoted as one URL path segment (``/`` included)."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class TaskInstanceLinks:
    """URLs of one task instance's page and files, under the API server's base path.

    :param base: e.g. ``/airflow/azerion/dags/d/runs/r/tasks/t/-1``.
    """

    base: str

    @classmethod
    def of(cls, root: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> TaskInstanceLinks:
        """The links of a task instance, below ``root`` (the plugin app's path as the browser sees it)."""
        q = path_segment
        return cls(f"{root.rstrip('/')}/dags/{q(dag_id)}/runs/{q(run_id)}/tasks/{q(task_id)}/{map_index}")

    def page(self, number: int = 1) -> str:
        """The task instance's Images page (page ``number``)."""
        return f"{self.base}/images" + (f"?page={number}" if number > 1 else "")

    def image(self, name: str) -> str:
        """The full image."""
        return f"{self.base}/images/{path_segment(name)}"

    def thumbnail(self, image: StoredImage) -> str:
        """The thumbnail; versioned by checksum, so browsers may keep it for good."""
        version = (image.sha256 or "")[:16] or str(image.bytes)
        return f"{self.base}/thumbnails/{path_segment(image.name)}?v={path_segment(version)}"

    def sidecar(self, name: str) -> str:
        """The JSON sidecar."""
        return f"{self.base}/sidecars/{path_segment(name)}"


@dataclass
class TaskInstanceView:
    """One task instance as its Images page shows it.

    :param task_id: the task id.
    :param map_index: the map index (-1 when not mapped).
    :param state: its state (``None`` before it is scheduled).
    :param try_number: its current try.
    :param task_type: the operator's name (its class name, or ``@task``...).
    :param is_azerion: whether it is an ``ImageGenerationOperator``.
    :param links: where its page and files are.
    :param folder: its folder; ``None`` when it is not known.
    :param contents: its folder's contents; ``None`` when the folder is not known.
    :param problem: why the folder is not known.
    :param reason: the same as a short code, put in the page for machines (tests, scrapers).
    :param note: a remark about how the folder was found.
    :param reviews: the review badge of each image a review covers, by image name.
    """

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    task_type: str | None
    is_azerion: bool
    links: TaskInstanceLinks
    folder: Any = None
    contents: FolderContents | None = None
    problem: str | None = None
    reason: str | None = None
    note: str | None = None
    reviews: dict[str, review_states.ReviewBadge] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many images its folder holds (0 when the folder is not known)."""
        return self.contents.count if self.contents is not None else 0

    @property
    def spend(self) -> Spend | None:
        """What all its folder's images cost (``None`` when the folder is not known or not read)."""
        return self.contents.spend if self.contents is not None else None

    @property
    def label(self) -> str:
        """The task id, with the map index of a mapped task instance."""
        return self.task_id if self.map_index < 0 else f"{self.task_id} [{self.map_index}]"

    @property
    def shown_images(self) -> list[StoredImage]:
        """The images its page shows as cards (none when there is a problem to show instead)."""
        contents = self.contents
        if not self.is_azerion or contents is None or contents.error is not None or not contents.count:
            return []
        return contents.images


@dataclass
class RunView:
    """A DAG run (or one mapped task of it) as its Images page shows it.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param state: the run's state.
    :param task_instances: its Azerion task instances.
    :param other_tasks: how many of its tasks are not Azerion tasks.
    :param title: the page's heading; ``Images of run <run_id>`` when empty.
    :param omitted: Azerion task instances not shown (beyond the page's limit).
    :param preview: images shown per task instance; its page link shows them all.
    """

    dag_id: str
    run_id: str
    state: str | None
    task_instances: list[TaskInstanceView]
    other_tasks: int = 0
    title: str = ""
    omitted: int = 0
    preview: int = RUN_PREVIEW
    tasks: dict[str, list[TaskInstanceView]] = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = {}
        for ti in self.task_instances:
            self.tasks.setdefault(ti.task_id, []).append(ti)

    @property
    def heading(self) -> str:
        """The page's heading."""
        return self.title or f"Images of run {self.run_id}"

    @property
    def image_count(self) -> int:
        """How many images its task instances' folders hold."""
        return sum(ti.count for ti in self.task_instances)

    @property
    def spend(self) -> Spend:
        """What its task instances' folders cost, every image counted (not only the preview)."""
        return total(ti.spend for ti in self.task_instances)

    def task_spend(self, task_id: str) -> Spend:
        """What the folders of task ``task_id``'s instances cost."""
        return total(ti.spend for ti in self.tasks.get(task_id, []))


def task_instance_view(session: Session, root: str, ti: TaskInstance, *, page: int) -> TaskInstanceView:
    """One task instance with page ``page`` of its folder's images (:data:`PAGE_SIZE` a page).

    :param root: the plugin app's path as the browser sees it (links start with it).
    :raises NotFound: when there is no such page.
    """
    dag_run = locate.get_dag_run(session, ti.dag_id, ti.run_id)
    facts = TASK_FACTS.for_task_instance(session, ti, dag_run)
    rendered = locate.get_rendered_fields(session, ti.dag_id, ti.run_id, ti.task_id)
    map_index = -1 if ti.map_index is None else ti.map_index
    offset = (page - 1) * PAGE_SIZE
    view = _view(root, ti, facts, rendered.get((ti.task_id, map_index)), offset=offset, limit=PAGE_SIZE)
    if view.count and offset >= view.count:
        raise NotFound(f"There is no page {page}: {view.count} images, {PAGE_SIZE} a page.")
    view.reviews = review_states.badges(session, _ui_base(), view.contents)
    return view


def run_view(
    session: Session, root: str, dag_id: str, run_id: str, tis: list[TaskInstance], title: str = ""
) -> RunView:
    """The Azerion task instances among ``tis`` (of one run), each with the first images of its folder.

    :param root: the plugin app's path as the browser sees it (links start with it).
    :param title: the page's heading; ``Images of run <run_id>`` when empty.
    """
    dag_run = locate.get_dag_run(session, dag_id, run_id)
    rendered = locate.get_rendered_fields(session, dag_id, run_id)
    azerion, others = [], set()
    for ti in tis:
        facts = TASK_FACTS.for_task_instance(session, ti, dag_run)
        if facts is not None and facts.is_azerion:
            azerion.append((ti, facts))
        else:
            others.add(ti.task_id)
    shown = azerion[:MAX_RUN_TASK_INSTANCES]
    preview = RUN_PREVIEW

    def build(item: tuple[TaskInstance, TaskFacts]) -> TaskInstanceView:
        ti, facts = item
        return _view(root, ti, facts, rendered.get((ti.task_id, ti.map_index)), offset=0, limit=preview)

    # A pool per page, not per process: a run's page is rare, and nothing waits on import.
    with ThreadPoolExecutor(max_workers=FOLDER_CONCURRENCY) as pool:
        views = list(pool.map(build, shown))
    for view in views:  # in this thread: the DB session is not shared with the pool
        view.reviews = review_states.badges(session, _ui_base(), view.contents)
    state = dag_run.state if dag_run is not None else None
    return RunView(
        dag_id=dag_id,
        run_id=run_id,
        state=str(getattr(state, "value", state)) if state else None,
        task_instances=views,
        other_tasks=len(others),
        title=title,
        omitted=len(azerion) - len(shown),
        preview=preview,
    )


def _ui_base() -> str:
    from airflow_provider_azerion.plugins.images import api_base_path

    return api_base_path()


def _view(
    root: str,
    ti: TaskInstance,
    facts: TaskFacts | None,
    rendered: Mapping[str, Any] | None,
    *,
    offset: int,
    limit: int | None,
) -> TaskInstanceView:
    """One task instance with what its folder holds (``limit`` images from ``offset``)."""
    map_index = -1 if ti.map_index is None else ti.map_index
    view = TaskInstanceView(
        task_id=ti.task_id,
        map_index=map_index,
        state=str(ti.state.value if hasattr(ti.state, "value") else ti.state) if ti.state else None,
        try_number=ti.try_number or 0,
        task_type=facts.operator_name if facts else (ti.custom_operator_name or ti.operator),
        is_azerion=bool(facts and facts.is_azerion),
        links=TaskInstanceLinks.of(root, ti.dag_id, ti.run_id, ti.task_id, map_index),
    )
    if facts is None or not facts.is_azerion:
        return view
    location = locate.locate(ti, facts, rendered)
    view.problem, view.reason, view.note = location.problem, location.reason, location.note
    view.folder = location.folder
    if location.folder is not None:
        view.contents = gallery.read_folder(
            location.folder, offset=offset, limit=limit, dimensions=DIMENSIONS, spend=True
        )
    return view
