"""The Images tab's HTML, rendered on the server.

The pages are complete without scripts: thumbnails are ``<img>`` elements and the full images
and sidecars plain links, so they work in the UI's sandboxed frame, in any HTTP client, and
draw at once. One small script (allowed by the page's CSP nonce) only adds "Copy URI" buttons;
without it the URI is still there to select.

Every value from a sidecar, the DB or the folder goes through :func:`_e` (HTML escaping) or
:func:`path_segment` (URL quoting); nothing else is interpolated.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow_provider_azerion.plugins.assets import COPY_SCRIPT, STYLE
from airflow_provider_azerion.plugins.gallery import FolderContents, StoredImage
from airflow_provider_azerion.plugins.thumbnails import MAX_SIDE

#: Images shown per task instance on a DAG run's page (the task instance's page shows them all).
RUN_PREVIEW = 24


def path_segment(value: object) -> str:
    """``value`` quoted as one URL path segment (``/`` included)."""
    return quote(str(value), safe="")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class TaskInstanceLinks:
    """URLs of one task instance's page and files, under the API server's base path.

    :param base: e.g. ``/airflow/azerion/dags/d/runs/r/tasks/t/-1``.
    """

    base: str

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

    @property
    def count(self) -> int:
        """How many images its folder holds (0 when the folder is not known)."""
        return self.contents.count if self.contents is not None else 0

    @property
    def label(self) -> str:
        """The task id, with the map index of a mapped task instance."""
        return self.task_id if self.map_index < 0 else f"{self.task_id} [{self.map_index}]"


@dataclass
class RunView:
    """A DAG run (or one mapped task of it) as its Images page shows it.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param state: the run's state.
    :param task_instances: its Azerion task instances.
    :param other_tasks: how many of its tasks are not Azerion tasks.
    :param title: the page's heading.
    :param omitted: Azerion task instances not shown (beyond the page's limit).
    """

    dag_id: str
    run_id: str
    state: str | None
    task_instances: list[TaskInstanceView]
    other_tasks: int = 0
    title: str = ""
    omitted: int = 0
    tasks: dict[str, list[TaskInstanceView]] = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = {}
        for ti in self.task_instances:
            self.tasks.setdefault(ti.task_id, []).append(ti)


def task_instance_page(
    dag_id: str,
    run_id: str,
    view: TaskInstanceView,
    *,
    page: int,
    page_size: int,
    thumbnails: bool,
    nonce: str,
) -> str:
    """The Images page of one task instance.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param view: the task instance.
    :param page: which page of images (from 1).
    :param page_size: images per page.
    :param thumbnails: whether thumbnails can be made (Pillow is installed).
    :param nonce: the CSP nonce of the page's script and style.
    """
    parts = [
        f"<header><h1>Images of {_e(view.label)}</h1>",
        f"<p class=sub>{_e(dag_id)} · {_e(run_id)}</p>",
        _summary(view),
        "</header>",
        *_pillow_notice(thumbnails),
    ]
    parts += _task_instance_body(view, page=page, page_size=page_size, thumbnails=thumbnails, limit=None)
    return _document(f"Images · {view.label}", parts, nonce)


def run_page(view: RunView, *, thumbnails: bool, nonce: str) -> str:
    """The Images page of a DAG run (or of one mapped task): its Azerion tasks, grouped.

    :param view: the run.
    :param thumbnails: whether thumbnails can be made (Pillow is installed).
    :param nonce: the CSP nonce of the page's script and style.
    """
    title = view.title or f"Images of run {view.run_id}"
    total = sum(ti.count for ti in view.task_instances)
    tis, tasks = len(view.task_instances), len(view.tasks)
    parts = [
        f"<header><h1>{_e(title)}</h1>",
        f"<p class=sub>{_e(view.dag_id)} · {_e(view.run_id)} · run {_state(view.state)}</p>",
        f"<p class=counts>{_count('images', total, 'image')} in "
        f"{_count('task-instances', tis, 'task instance')} of {_count('tasks', tasks, 'Azerion task')}</p>",
        "</header>",
        *_pillow_notice(thumbnails),
    ]
    if not view.task_instances:
        others = (
            f" (it has {view.other_tasks} other {_plural(view.other_tasks, 'task')})"
            if view.other_tasks
            else ""
        )
        parts.append(
            "<p class=empty data-reason=no-azerion-tasks>This run has no ImageGenerationOperator "
            f"task{_e(others)}.</p>"
        )
    if view.omitted:
        parts.append(
            f"<p class=notice>{view.omitted} more Azerion task instances are not shown; open them from "
            "their own Images tab.</p>"
        )
    for task_id, task_instances in view.tasks.items():
        parts += _task_section(task_id, task_instances, thumbnails)
    return _document(title, parts, nonce)


def _task_section(task_id: str, tis: list[TaskInstanceView], thumbnails: bool) -> list[str]:
    """One task of a run's page: a heading with counts, then each task instance with a preview."""
    mapped = any(ti.map_index >= 0 for ti in tis)
    detail = f"{len(tis)} mapped task {_plural(len(tis), 'instance')} · " if mapped else ""
    count = sum(ti.count for ti in tis)
    parts = [
        f"<section class=task data-task-id='{_e(task_id)}'><h2>{_e(task_id)} "
        f"<small>{_e(detail)}{_count('task-images', count, 'image')}</small></h2>"
    ]
    for ti in tis:
        label = f"map index {ti.map_index}" if mapped else "task instance"
        link = f"<a href='{_e(ti.links.page())}'>{label}</a> "
        parts.append(
            f"<article class=ti data-map-index={ti.map_index}><h3>{link}{_state(ti.state)} · "
            f"try {ti.try_number} · {_count('ti-images', ti.count, 'image')}</h3>"
        )
        parts += _task_instance_body(
            ti, page=1, page_size=RUN_PREVIEW, thumbnails=thumbnails, limit=RUN_PREVIEW
        )
        parts.append("</article>")
    parts.append("</section>")
    return parts


def _count(name: str, value: int, word: str) -> str:
    """``value`` and ``word`` (pluralised), the number marked ``data-count=<name>`` for machines."""
    return f"<strong data-count={name}>{value}</strong> {_plural(value, word)}"


def message_page(title: str, message: str, status: int, nonce: str) -> str:
    """A page that only says something (an error, mostly).

    :param title: its heading.
    :param message: what happened and what to do.
    :param status: the HTTP status, shown too.
    :param nonce: the CSP nonce of the page's style.
    """
    return _document(
        title, [f"<h1>{_e(title)}</h1>", f"<p class=notice data-status={status}>{_e(message)}</p>"], nonce
    )


def _summary(view: TaskInstanceView) -> str:
    items = [
        f"{_e(view.task_type or 'unknown operator')}",
        f"state {_state(view.state)}",
        f"try {view.try_number}",
    ]
    if view.contents is not None:
        items.append(f"{_count('images', view.count, 'image')} stored")
    return "<p class=counts>" + " · ".join(items) + "</p>"


def _task_instance_body(
    view: TaskInstanceView, *, page: int, page_size: int, thumbnails: bool, limit: int | None
) -> list[str]:
    """Why there is nothing to show, or the folder and a grid of its images."""
    if not view.is_azerion:
        return [
            f"<p class=empty data-reason=not-azerion>{_e(view.task_id)} is a {_e(view.task_type or 'task')} "
            "task, not an ImageGenerationOperator: it stores no images this tab can show.</p>"
        ]
    if view.contents is None:
        return [
            f"<p class=notice data-reason='{_e(view.reason or 'unknown-folder')}'>"
            f"{_e(view.problem or 'The output folder is not known.')}</p>"
        ]
    contents = view.contents
    parts = [f"<p class=folder>Folder <code data-folder>{_e(contents.uri)}</code></p>"]
    if view.note:
        parts.append(f"<p class=note data-note=unrendered>{_e(view.note)}</p>")
    if contents.error is not None:
        parts.append(
            f"<p class=notice data-reason=unreadable>The folder could not be read: {_e(contents.error)}</p>"
        )
        return parts
    if not contents.count:
        parts.append(
            f"<p class=empty data-reason=empty>Nothing stored yet. {_e(_empty_reason(view.state))}</p>"
        )
        return parts
    parts.append(_grid(view.links, contents.images, thumbnails))
    if limit is not None and contents.count > limit:
        parts.append(
            f"<p class=more><a href='{_e(view.links.page())}'>All {contents.count} images of "
            f"{_e(view.label)}</a></p>"
        )
    elif limit is None:
        parts.append(_pager(view.links, page, page_size, contents.count))
    return parts


def _empty_reason(state: str | None) -> str:
    if state in (None, "none", "scheduled", "queued", "deferred", "up_for_reschedule"):
        return "The task has not run yet."
    if state in ("running", "restarting"):
        return "The task is running: reload to see images as they are stored."
    if state in ("failed", "upstream_failed", "up_for_retry"):
        return "The task failed before storing any image."
    if state == "skipped":
        return "The task was skipped."
    return "Its images may have been moved or deleted."


def _grid(links: TaskInstanceLinks, images: Sequence[StoredImage], thumbnails: bool) -> str:
    return "<ul class=grid>" + "".join(_card(links, image, thumbnails) for image in images) + "</ul>"


def _card(links: TaskInstanceLinks, image: StoredImage, thumbnails: bool) -> str:
    meta = image.metadata
    prompt = meta.get("prompt")
    revised = meta.get("revised_prompt")
    full = _e(links.image(image.name))
    if thumbnails:
        size = ""
        if image.dimensions:
            width, height = _fit(image.dimensions)
            size = f" width={width} height={height}"
        picture = (
            f"<img src='{_e(links.thumbnail(image))}' alt='{_e(prompt or image.name)}' "
            f"loading=lazy decoding=async{size}>"
        )
    else:
        picture = f"<span class=nothumb>{_e(image.name)}</span>"
    rows = [
        ("Model", meta.get("model")),
        ("Style", meta.get("style")),
        ("Size", f"{image.dimensions[0]}\u00d7{image.dimensions[1]} px" if image.dimensions else None),
        ("Bytes", f"{image.bytes:,} ({_human_bytes(image.bytes)})"),
        ("Type", meta.get("media_type")),
        ("SHA-256", image.sha256),
        ("Created", _when(meta.get("created"))),
        ("Try", meta.get("try_number")),
    ]
    details = "".join(_row(label, value) for label, value in rows if value not in (None, ""))
    text = [f"<p class=prompt>{_e(prompt)}</p>" if prompt else "<p class=prompt missing>No sidecar yet</p>"]
    if revised and revised != prompt:
        text.append(f"<p class=revised><span>Revised</span> {_e(revised)}</p>")
    sidecar = f" · <a href='{_e(links.sidecar(image.sidecar))}'>Sidecar</a>" if image.sidecar else ""
    return (
        f"<li class=card data-image='{_e(image.name)}'>"
        f"<a class=thumb href='{full}' title='Open the full image'>{picture}</a>"
        f"<div class=meta>{''.join(text)}<dl>{details}</dl>"
        f"<p class=links><a href='{full}'>Full image</a>{sidecar} "
        f"<button type=button class=copy data-uri='{_e(image.uri)}' hidden>Copy URI</button></p>"
        f"<input class=uri readonly value='{_e(image.uri)}' aria-label='URI of {_e(image.name)}'>"
        "</div></li>"
    )


def _when(value: Any) -> Any:
    """An ISO timestamp as ``2025-06-01 06:00:12 UTC``; anything else as it is."""
    from datetime import datetime, timezone

    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(label: str, value: Any) -> str:
    if label == "SHA-256":
        return f"<dt>{label}</dt><dd><code title='{_e(value)}'>{_e(str(value)[:12])}…</code></dd>"
    return f"<dt>{label}</dt><dd>{_e(value)}</dd>"


def _fit(dimensions: tuple[int, int]) -> tuple[int, int]:
    """Size of the thumbnail of an image of ``dimensions`` (what the server makes)."""
    width, height = dimensions
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _pager(links: TaskInstanceLinks, page: int, page_size: int, count: int) -> str:
    pages = max(1, -(-count // page_size))
    if pages == 1:
        return ""
    first = (page - 1) * page_size + 1
    last = min(count, page * page_size)
    items = [f"Images {first}-{last} of {count}"]
    if page > 1:
        items.append(f"<a rel=prev href='{_e(links.page(page - 1))}'>Previous</a>")
    if page < pages:
        items.append(f"<a rel=next href='{_e(links.page(page + 1))}'>Next</a>")
    return "<nav class=pager>" + " · ".join(items) + "</nav>"


def _pillow_notice(thumbnails: bool) -> Iterable[str]:
    if thumbnails:
        return []
    return [
        "<p class=notice data-reason=no-pillow>No thumbnails: Pillow is not installed on the Airflow API "
        'server (pip install "airflow-provider-azerion[ui]" there). The images are still linked.</p>'
    ]


def _state(state: str | None) -> str:
    name = state or "none"
    return f"<span class='state state-{_e(name)}' data-state='{_e(name)}'>{_e(name.replace('_', ' '))}</span>"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - unreachable


def _document(title: str, body: Iterable[str], nonce: str) -> str:
    content = "".join(body)
    # The script only adds copy buttons: a page without cards needs none.
    script = f"<script nonce='{_e(nonce)}'>{COPY_SCRIPT}</script>" if "class=copy" in content else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<meta name=referrer content=no-referrer>"
        f"<title>{_e(title)}</title><style nonce='{_e(nonce)}'>{STYLE}</style></head><body>"
        f"{content}{script}</body></html>"
    )
