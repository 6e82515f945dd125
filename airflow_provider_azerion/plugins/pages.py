"""The Images pages as HTML: ``templates/*.html`` rendered with Jinja2, every value autoescaped.

The pages are complete without scripts: thumbnails are ``<img>`` elements and the full images
and sidecars plain links, so they work in the UI's sandboxed frame, in any HTTP client, and draw
at once. One small inline script (allowed by the page's CSP nonce) only adds "Copy URI" buttons;
without it the URI is still there to select.

Every value from a sidecar, the DB or the folder reaches the HTML through Jinja's autoescaping
(URL path segments are quoted by :class:`~.views.TaskInstanceLinks` before that); the templates
never mark anything safe.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.plugins.spend import SOURCE as SPEND_SOURCE
from airflow_provider_azerion.plugins.thumbnails import MAX_SIDE

if TYPE_CHECKING:
    import jinja2

    from airflow_provider_azerion.plugins.views import RunView, TaskInstanceView


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
    return _render(
        "task_instance.html",
        nonce=nonce,
        copy_script=bool(view.shown_images),
        dag_id=dag_id,
        run_id=run_id,
        view=view,
        page=page,
        page_size=page_size,
        thumbnails=thumbnails,
    )


def run_page(view: RunView, *, thumbnails: bool, nonce: str) -> str:
    """The Images page of a DAG run (or of one mapped task): its Azerion tasks, grouped.

    :param view: the run.
    :param thumbnails: whether thumbnails can be made (Pillow is installed).
    :param nonce: the CSP nonce of the page's script and style.
    """
    copy_script = any(ti.shown_images for ti in view.task_instances)
    return _render("run.html", nonce=nonce, copy_script=copy_script, view=view, thumbnails=thumbnails)


def message_page(title: str, message: str, status: int, nonce: str) -> str:
    """A page that only says something (an error, mostly).

    :param title: its heading.
    :param message: what happened and what to do.
    :param status: the HTTP status, shown too.
    :param nonce: the CSP nonce of the page's style.
    """
    return _render(
        "message.html", nonce=nonce, copy_script=False, title=title, message=message, status=status
    )


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates' environment, made on the first page (Jinja2 ships with Airflow)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_provider_azerion.plugins", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # None shows as nothing rather than "None" (a sidecar's missing field, a run not started).
        finalize=lambda value: "" if value is None else value,
    )
    environment.filters.update(
        plural=plural,
        thousands="{:,}".format,
        human_bytes=human_bytes,
        when=when,
        thumbnail_size=thumbnail_size,
    )
    environment.globals["spend_source"] = SPEND_SOURCE  # the spend figures' tooltip
    return environment


def plural(word: str, count: int) -> str:
    """``word``, with an ``s`` unless ``count`` is 1."""
    return word if count == 1 else word + "s"


def human_bytes(size: int) -> str:
    """A size in bytes as ``812 B``, ``3.4 KiB``, ``1.2 MiB`` or ``2.0 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def when(value: Any) -> Any:
    """An ISO timestamp as ``2025-06-01 06:00:12 UTC``; anything else as it is."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def thumbnail_size(dimensions: tuple[int, int]) -> tuple[int, int]:
    """Size of the thumbnail of an image of ``dimensions`` (what the server makes)."""
    width, height = dimensions
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
