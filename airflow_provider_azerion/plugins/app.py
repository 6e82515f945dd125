"""The API server app behind the Images tabs: pages, images, thumbnails and sidecars.

Airflow mounts plugin apps without any authentication, so every route depends on Airflow's own
auth manager (:func:`~airflow.api_fastapi.core_api.security.requires_access_dag`, which reads the
JWT from the ``_token`` cookie the UI's frame sends, or from an ``Authorization: Bearer`` header):
no credentials give 401, a user who may not read the DAG's task instances and XComs gets 403.

Routes take only ids (DAG, run, task, map index) and bare file names. The server finds the task
instance's folder itself and serves only files of the operator's name pattern (``NNNN-J.ext`` and
``NNNN-J.json``) in it, never through a symbolic link; anything else, ``..`` or an encoded slash
included, is 404. Images are served only when their bytes are PNG, JPEG, WebP or GIF, with that
content type and ``X-Content-Type-Options: nosniff``.

Imported only on the API server, when Airflow first reads the plugin's ``fastapi_apps``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_azerion.image_formats import sniff_image_format
from airflow_provider_azerion.plugins import gallery, locate, pages, thumbnail_store, thumbnails
from airflow_provider_azerion.storage import LOCAL_PROTOCOLS

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import ObjectStoragePath
    from sqlalchemy.orm import Session

#: Images per page of a task instance's tab.
PAGE_SIZE = 200
#: Azerion task instances a DAG run's tab shows (each one costs a folder listing).
MAX_RUN_TASK_INSTANCES = 200
#: Folders a DAG run's tab reads at once.
FOLDER_CONCURRENCY = 8
_CHUNK = 256 * 1024
_MAP_INDEX = re.compile(r"[0-9]{1,9}")
#: What the UI leaves in a tab's URL on a task instance that is not mapped.
_MAP_INDEX_PLACEHOLDER = "{MAP_INDEX}"
_FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Whatever a file turned out to be, a browser must never run it as a page.
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}

#: Caches of this API server worker: task facts per DAG version and pixel sizes (thumbnails have
#: theirs in :mod:`.thumbnail_store`), and task instances' folders for the file routes.
TASK_FACTS = locate.TaskFactsCache()
DIMENSIONS = gallery.DimensionCache()
FOLDER_TTL = 10.0
MAX_REMEMBERED_FOLDERS = 1024
_folders: dict[tuple[str, str, str, int], tuple[float, ObjectStoragePath]] = {}
_folders_lock = threading.Lock()

_TI_PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/{map_index}"
router = APIRouter()


def create_app() -> FastAPI:
    """The FastAPI app Airflow mounts at the plugin's URL prefix.

    Every route requires read access to the DAG's task instances and XComs. No API docs are
    served: they would be routes without authentication.
    """
    app = FastAPI(
        title="Azerion images",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[
            Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
            Depends(requires_access_dag("GET", DagAccessEntity.XCOM)),
        ],
    )
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


# -- pages ---------------------------------------------------------------------------------------


@router.get(_TI_PATH + "/images", response_class=HTMLResponse)
def task_instance_images(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str,
    request: Request,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The Images tab of one task instance: every image its folder holds, with its facts."""
    index = _parse_map_index(map_index)
    ti = _task_instance(session, dag_id, run_id, task_id, index)
    if ti is None:
        mapped = [t for t in locate.get_task_instances(session, dag_id, run_id, task_id) if t.map_index >= 0]
        if index == -1 and mapped:  # the tab of a mapped task as a whole: all its map indexes
            group = _run_view(request, session, dag_id, run_id, mapped)
            group.title = f"Images of {task_id} (mapped)"
            nonce = secrets.token_urlsafe(16)
            return _page(pages.run_page(group, thumbnails=thumbnails.pillow_available(), nonce=nonce), nonce)
        raise HTTPException(
            404, f"No task instance {task_id} (map index {index}) in run {run_id} of {dag_id}."
        )
    dag_run = locate.get_dag_run(session, dag_id, run_id)
    facts = TASK_FACTS.for_task_instance(session, ti, dag_run)
    rendered = locate.get_rendered_fields(session, dag_id, run_id, task_id).get((task_id, index))
    offset = (page - 1) * PAGE_SIZE
    view = _view(request, ti, facts, rendered, offset=offset, limit=PAGE_SIZE)
    if view.contents is not None and view.contents.count and offset >= view.contents.count:
        raise HTTPException(
            404, f"There is no page {page}: {view.contents.count} images, {PAGE_SIZE} a page."
        )
    if view.folder is not None and view.contents is not None and thumbnails.pillow_available():
        thumbnail_store.prepare(view.folder, [image.name for image in view.contents.images])
    nonce = secrets.token_urlsafe(16)
    html = pages.task_instance_page(
        dag_id,
        run_id,
        view,
        page=page,
        page_size=PAGE_SIZE,
        thumbnails=thumbnails.pillow_available(),
        nonce=nonce,
    )
    return _page(html, nonce)


@router.get("/dags/{dag_id}/runs/{run_id}/images", response_class=HTMLResponse)
def run_images(dag_id: str, run_id: str, request: Request, session: SessionDep) -> Response:
    """The Images tab of a DAG run: its Azerion task instances, by task and map index, with counts."""
    if locate.get_dag_run(session, dag_id, run_id) is None:
        raise HTTPException(404, f"No run {run_id} of DAG {dag_id}.")
    view = _run_view(request, session, dag_id, run_id, locate.get_task_instances(session, dag_id, run_id))
    nonce = secrets.token_urlsafe(16)
    return _page(pages.run_page(view, thumbnails=thumbnails.pillow_available(), nonce=nonce), nonce)


# -- files ---------------------------------------------------------------------------------------


@router.get(_TI_PATH + "/images/{name}")
def image(dag_id: str, run_id: str, task_id: str, map_index: str, name: str, session: SessionDep) -> Response:
    """A full image, streamed, with the content type its bytes show (PNG, JPEG, WebP or GIF only)."""
    path = _file(session, dag_id, run_id, task_id, map_index, name, gallery.is_image_name)
    try:
        handle = path.fs.open(path.path, "rb")
    except FileNotFoundError:
        raise HTTPException(404, f"{name} is not in the task instance's folder.") from None
    try:
        head = handle.read(16)
        fmt = sniff_image_format(head)
        size = handle.size if isinstance(getattr(handle, "size", None), int) else None
    except BaseException:
        handle.close()
        raise
    if fmt is None:
        handle.close()
        raise HTTPException(404, f"{name} is not a PNG, JPEG, WebP or GIF image; it is not served.")

    def chunks() -> Iterator[bytes]:
        try:
            yield head
            while chunk := handle.read(_CHUNK):
                yield chunk
        finally:
            handle.close()

    headers = {
        **_FILE_HEADERS,
        "Cache-Control": "private, no-cache",
        "Content-Disposition": f'inline; filename="{name}"',
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks(), media_type=fmt.media_type, headers=headers)


@router.get(_TI_PATH + "/thumbnails/{name}")
def thumbnail(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str,
    name: str,
    request: Request,
    session: SessionDep,
    v: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """A thumbnail (at most 256 px on its longest side), made once per image version and cached."""
    path = _file(session, dag_id, run_id, task_id, map_index, name, gallery.is_image_name)
    try:
        made = thumbnail_store.thumbnail_of(path)
    except FileNotFoundError:
        raise HTTPException(404, f"{name} is not in the task instance's folder.") from None
    except thumbnails.ThumbnailError as err:
        raise HTTPException(err.status, str(err)) from None
    etag = f'"{made.etag}"'
    # The page versions thumbnail URLs by the image's checksum: such a URL never changes content.
    cache = "private, max-age=31536000, immutable" if v == made.etag else "private, no-cache"
    headers = {**_FILE_HEADERS, "ETag": etag, "Cache-Control": cache}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(made.content, media_type=made.media_type, headers=headers)


@router.get(_TI_PATH + "/sidecars/{name}")
def sidecar(
    dag_id: str, run_id: str, task_id: str, map_index: str, name: str, session: SessionDep
) -> Response:
    """An image's JSON sidecar, re-encoded from its parsed contents (so it is JSON, whatever the file)."""
    path = _file(session, dag_id, run_id, task_id, map_index, name, gallery.is_sidecar_name)
    try:
        if path.fs.size(path.path) > gallery.MAX_SIDECAR_BYTES:
            raise HTTPException(404, f"{name} is too large to be a sidecar.")
        content = path.fs.cat_file(path.path)
    except FileNotFoundError:
        raise HTTPException(404, f"{name} is not in the task instance's folder.") from None
    try:
        metadata = json.loads(content)
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise HTTPException(404, f"{name} is not a valid sidecar (not a JSON object).")
    body = json.dumps(metadata, indent=2, ensure_ascii=False, sort_keys=True)
    return Response(
        body, media_type="application/json", headers={**_FILE_HEADERS, "Cache-Control": "private, no-cache"}
    )


# -- helpers -------------------------------------------------------------------------------------


def _parse_map_index(raw: str) -> int:
    """The map index of a route: ``-1`` for an unmapped task instance (the UI leaves the literal
    ``{MAP_INDEX}`` there), else a non-negative number."""
    if raw in (_MAP_INDEX_PLACEHOLDER, "-1"):
        return -1
    if _MAP_INDEX.fullmatch(raw):
        return int(raw)
    raise HTTPException(404, f"{raw!r} is not a map index.")


def _task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> TaskInstance | None:
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


def _file(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: str, name: str, allowed: Any
) -> ObjectStoragePath:
    """The path of file ``name`` in an Azerion task instance's folder, if the name is one it writes.

    Nothing from the client becomes part of a path but ``name``, and only when it matches the
    operator's own file name pattern (no ``/``, no ``..``, no hidden name).
    """
    if not allowed(name):
        raise HTTPException(404, f"{name!r} is not a file name the operator writes.")
    path = _folder(session, dag_id, run_id, task_id, _parse_map_index(map_index)) / name
    if path.protocol in LOCAL_PROTOCOLS and os.path.islink(path.path):
        # The operator never writes links; one could point anywhere on the API server's disk.
        raise HTTPException(404, f"{name} is a symbolic link; it is not served.")
    return path


def _folder(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> ObjectStoragePath:
    """An Azerion task instance's folder, remembered for a few seconds.

    A page's hundred thumbnail requests would otherwise look it up a hundred times (three
    queries each). Access is checked on every request before this; only the location is kept.
    """
    key = (dag_id, run_id, task_id, map_index)
    now = time.monotonic()
    with _folders_lock:
        cached = _folders.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
    ti = _task_instance(session, dag_id, run_id, task_id, map_index)
    if ti is None:
        raise HTTPException(
            404, f"No task instance {task_id} (map index {map_index}) in run {run_id} of {dag_id}."
        )
    facts = TASK_FACTS.for_task_instance(session, ti, None)
    if facts is None or not facts.is_azerion:
        raise HTTPException(404, f"{task_id} is not an ImageGenerationOperator task.")
    rendered = locate.get_rendered_fields(session, dag_id, run_id, task_id).get((task_id, map_index))
    location = locate.locate(ti, facts, rendered)
    if location.folder is None:
        raise HTTPException(404, location.problem or "The task instance's folder is not known.")
    with _folders_lock:
        if len(_folders) >= MAX_REMEMBERED_FOLDERS:
            _folders.clear()
        _folders[key] = (now + FOLDER_TTL, location.folder)
    return location.folder


def _view(
    request: Request,
    ti: TaskInstance,
    facts: locate.TaskFacts | None,
    rendered: Any,
    *,
    offset: int,
    limit: int | None,
) -> pages.TaskInstanceView:
    """One task instance with what its folder holds (``limit`` images from ``offset``)."""
    map_index = -1 if ti.map_index is None else ti.map_index
    view = pages.TaskInstanceView(
        task_id=ti.task_id,
        map_index=map_index,
        state=str(ti.state.value if hasattr(ti.state, "value") else ti.state) if ti.state else None,
        try_number=ti.try_number or 0,
        task_type=facts.operator_name if facts else (ti.custom_operator_name or ti.operator),
        is_azerion=bool(facts and facts.is_azerion),
        links=_links(request, ti.dag_id, ti.run_id, ti.task_id, map_index),
    )
    if facts is None or not facts.is_azerion:
        return view
    location = locate.locate(ti, facts, rendered)
    view.problem, view.reason, view.note = location.problem, location.reason, location.note
    view.folder = location.folder
    if location.folder is not None:
        view.contents = gallery.read_folder(
            location.folder, offset=offset, limit=limit, dimensions=DIMENSIONS
        )
    return view


def _run_view(
    request: Request, session: Session, dag_id: str, run_id: str, tis: list[TaskInstance]
) -> pages.RunView:
    """The Azerion task instances among ``tis``, each with the first images of its folder."""
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

    def build(item: tuple[TaskInstance, locate.TaskFacts]) -> pages.TaskInstanceView:
        ti, facts = item
        return _view(
            request, ti, facts, rendered.get((ti.task_id, ti.map_index)), offset=0, limit=pages.RUN_PREVIEW
        )

    with ThreadPoolExecutor(max_workers=FOLDER_CONCURRENCY) as pool:
        views = list(pool.map(build, shown))
    state = dag_run.state if dag_run is not None else None
    return pages.RunView(
        dag_id=dag_id,
        run_id=run_id,
        state=str(getattr(state, "value", state)) if state else None,
        task_instances=views,
        other_tasks=len(others),
        omitted=len(azerion) - len(shown),
    )


def _links(
    request: Request, dag_id: str, run_id: str, task_id: str, map_index: int
) -> pages.TaskInstanceLinks:
    # root_path is the API server's base path plus the plugin's prefix, as the browser sees them.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    q = pages.path_segment
    return pages.TaskInstanceLinks(f"{root}/dags/{q(dag_id)}/runs/{q(run_id)}/tasks/{q(task_id)}/{map_index}")


def _page(html: str, nonce: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An HTML response with the headers every page gets (CSP allowing only its own nonce)."""
    return HTMLResponse(html, status_code=status, headers={**_page_headers(nonce), **(headers or {})})


def _page_headers(nonce: str) -> dict[str, str]:
    return {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": (
            f"default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
        ),
    }


async def _http_error(request: Request, exc: Any) -> Response:
    """Errors as a small HTML page (the tab shows it), with the security headers of any page."""
    status = int(exc.status_code)
    titles = {401: "Not logged in", 403: "Not allowed", 404: "Not found"}
    message = str(exc.detail)
    if status == 401:
        message = "Log in to Airflow to see this tab (no valid session cookie or bearer token was sent)."
    elif status == 403:
        message = "Your Airflow user may not read this DAG's task instances and XComs."
    nonce = secrets.token_urlsafe(16)
    html = pages.message_page(titles.get(status, f"Error {status}"), message, status, nonce)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return _page(html, nonce, status, headers)
