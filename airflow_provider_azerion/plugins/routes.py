"""The API server app behind the Images tabs: its routes, who may use them, and what URLs mean.

Airflow mounts plugin apps without any authentication, so every route of :data:`router` depends
on Airflow's own auth manager (:func:`~airflow.api_fastapi.core_api.security.requires_access_dag`,
which reads the JWT from the ``_token`` cookie the UI's frame sends, or from an
``Authorization: Bearer`` header): no credentials give 401, a user who may not read the DAG's
task instances and XComs gets 403.

Routes take only ids (DAG, run, task, map index) and bare file names. The server finds the task
instance's folder itself (:func:`.locate.task_folder`) and serves only files of the operator's
name pattern (``NNNN-J.ext`` and ``NNNN-J.json``) in it, never through a symbolic link; anything
else, ``..`` or an encoded slash included, is 404. Images are served only when their bytes are
PNG, JPEG, WebP or GIF, with that content type and ``X-Content-Type-Options: nosniff``.

Imported only on the API server, when Airflow first reads the plugin's ``fastapi_apps``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_azerion import sidecar as sidecars
from airflow_provider_azerion.image_formats import sniff_image_format
from airflow_provider_azerion.layout import is_image_name, is_sidecar_name
from airflow_provider_azerion.plugins import locate, pages, thumbnail_store, thumbnails, views
from airflow_provider_azerion.plugins.locate import NotFound
from airflow_provider_azerion.storage import LOCAL_PROTOCOLS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from sqlalchemy.orm import Session

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
_TI_PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/{map_index}"

#: Every route: the user must be allowed to read the DAG's task instances and its XComs.
router = APIRouter(
    dependencies=[
        Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
        Depends(requires_access_dag("GET", DagAccessEntity.XCOM)),
    ]
)


def create_app() -> FastAPI:
    """The FastAPI app Airflow mounts at the plugin's URL prefix.

    No API docs are served: they would be routes without authentication.
    """
    app = FastAPI(title="Azerion images", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NotFound, _not_found)
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
    root = _root(request)
    ti = locate.get_task_instance(session, dag_id, run_id, task_id, index)
    if ti is None:
        mapped = [t for t in locate.get_task_instances(session, dag_id, run_id, task_id) if t.map_index >= 0]
        if index == -1 and mapped:  # the tab of a mapped task as a whole: all its map indexes
            group = views.run_view(
                session, root, dag_id, run_id, mapped, title=f"Images of {task_id} (mapped)"
            )
            return _page(
                lambda nonce: pages.run_page(group, thumbnails=thumbnails.pillow_available(), nonce=nonce)
            )
        raise NotFound(f"No task instance {task_id} (map index {index}) in run {run_id} of {dag_id}.")
    view = views.task_instance_view(session, root, ti, page=page)
    if view.folder is not None and view.contents is not None and thumbnails.pillow_available():
        thumbnail_store.prepare(view.folder, [image.name for image in view.contents.images])
    return _page(
        lambda nonce: pages.task_instance_page(
            dag_id,
            run_id,
            view,
            page=page,
            page_size=views.PAGE_SIZE,
            thumbnails=thumbnails.pillow_available(),
            nonce=nonce,
        )
    )


@router.get("/dags/{dag_id}/runs/{run_id}/images", response_class=HTMLResponse)
def run_images(dag_id: str, run_id: str, request: Request, session: SessionDep) -> Response:
    """The Images tab of a DAG run: its Azerion task instances, by task and map index, with counts."""
    if locate.get_dag_run(session, dag_id, run_id) is None:
        raise NotFound(f"No run {run_id} of DAG {dag_id}.")
    tis = locate.get_task_instances(session, dag_id, run_id)
    view = views.run_view(session, _root(request), dag_id, run_id, tis)
    return _page(lambda nonce: pages.run_page(view, thumbnails=thumbnails.pillow_available(), nonce=nonce))


# -- files ---------------------------------------------------------------------------------------


@router.get(_TI_PATH + "/images/{name}")
def image(dag_id: str, run_id: str, task_id: str, map_index: str, name: str, session: SessionDep) -> Response:
    """A full image, streamed, with the content type its bytes show (PNG, JPEG, WebP or GIF only)."""
    path = _file(session, dag_id, run_id, task_id, map_index, name, is_image_name)
    try:
        handle = path.fs.open(path.path, "rb")
    except FileNotFoundError:
        raise NotFound(f"{name} is not in the task instance's folder.") from None
    try:
        head = handle.read(16)
        fmt = sniff_image_format(head)
        size = handle.size if isinstance(getattr(handle, "size", None), int) else None
    except BaseException:
        handle.close()
        raise
    if fmt is None:
        handle.close()
        raise NotFound(f"{name} is not a PNG, JPEG, WebP or GIF image; it is not served.")

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
    path = _file(session, dag_id, run_id, task_id, map_index, name, is_image_name)
    try:
        made = thumbnail_store.thumbnail_of(path)
    except FileNotFoundError:
        raise NotFound(f"{name} is not in the task instance's folder.") from None
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
    path = _file(session, dag_id, run_id, task_id, map_index, name, is_sidecar_name)
    try:
        if path.fs.size(path.path) > sidecars.MAX_SIDECAR_BYTES:
            raise NotFound(f"{name} is too large to be a sidecar.")
        metadata = sidecars.parse(path.fs.cat_file(path.path))
    except FileNotFoundError:
        raise NotFound(f"{name} is not in the task instance's folder.") from None
    if metadata is None:
        raise NotFound(f"{name} is not a valid sidecar (not a JSON object).")
    headers = {**_FILE_HEADERS, "Cache-Control": "private, no-cache"}
    return Response(sidecars.encode(metadata), media_type="application/json", headers=headers)


# -- what a URL names ----------------------------------------------------------------------------


def _parse_map_index(raw: str) -> int:
    """The map index of a route: ``-1`` for an unmapped task instance (the UI leaves the literal
    ``{MAP_INDEX}`` there), else a non-negative number."""
    if raw in (_MAP_INDEX_PLACEHOLDER, "-1"):
        return -1
    if _MAP_INDEX.fullmatch(raw):
        return int(raw)
    raise NotFound(f"{raw!r} is not a map index.")


def _file(
    session: Session,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str,
    name: str,
    allowed: Callable[[str], bool],
) -> ObjectStoragePath:
    """The path of file ``name`` in an Azerion task instance's folder, if the name is one it writes.

    Nothing from the client becomes part of a path but ``name``, and only when it matches the
    operator's own file name pattern (no ``/``, no ``..``, no hidden name).
    """
    if not allowed(name):
        raise NotFound(f"{name!r} is not a file name the operator writes.")
    path = locate.task_folder(session, dag_id, run_id, task_id, _parse_map_index(map_index)) / name
    if path.protocol in LOCAL_PROTOCOLS and os.path.islink(path.path):
        # The operator never writes links; one could point anywhere on the API server's disk.
        raise NotFound(f"{name} is a symbolic link; it is not served.")
    return path


def _root(request: Request) -> str:
    """The app's path as the browser sees it: the API server's base path plus the plugin's prefix."""
    return str(request.scope.get("root_path", "")).rstrip("/")


# -- responses -----------------------------------------------------------------------------------


def _page(render: Callable[[str], str], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An HTML page rendered with a fresh CSP nonce, with the headers every page gets."""
    nonce = secrets.token_urlsafe(16)
    return HTMLResponse(
        render(nonce), status_code=status, headers={**_page_headers(nonce), **(headers or {})}
    )


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


async def _not_found(request: Request, exc: Any) -> Response:
    return await _http_error(request, HTTPException(404, str(exc)))


async def _http_error(request: Request, exc: Any) -> Response:
    """Errors as a small HTML page (the tab shows it), with the security headers of any page."""
    status = int(exc.status_code)
    titles = {401: "Not logged in", 403: "Not allowed", 404: "Not found"}
    message = str(exc.detail)
    if status == 401:
        message = "Log in to Airflow to see this tab (no valid session cookie or bearer token was sent)."
    elif status == 403:
        message = "Your Airflow user may not read this DAG's task instances and XComs."
    title = titles.get(status, f"Error {status}")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return _page(lambda nonce: pages.message_page(title, message, status, nonce), status, headers)
