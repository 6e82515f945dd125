"""The hook's ``requests`` session: pooled, proxies per origin, and its sockets tracked for cancel.

What it adds to a plain ``requests.Session``:

- urllib3 never retries on its own (``max_retries=0``): the call loop in :mod:`.calls` owns every
  retry, within one budget.
- Proxy and CA-bundle settings come from the environment as ``requests`` reads them, but once per
  origin instead of on every request (see :func:`session_class`).
- Every socket it connects, directly or through a proxy, is reported to a :class:`SocketTracker`,
  so that a cancel can shut down calls blocked in a read at once instead of after ``read_timeout``.
- urllib3's DEBUG lines never show a signed link's query string.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.hooks.auth import BearerAuth
from airflow_provider_azerion.redact import elide_request_line_query

if TYPE_CHECKING:
    import requests


class SocketTracker:
    """The sockets a session connected, so that :meth:`shutdown_all` can end every call at once."""

    def __init__(self) -> None:
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._shut = False
        #: TCP connections opened so far (a pool too small for its threads opens many more).
        self.connections_opened = 0

    def track(self, sock: socket.socket) -> None:
        """Remember a connected socket; shut it down at once if :meth:`shutdown_all` was called."""
        with self._lock:
            self.connections_opened += 1
            self._sockets.add(sock)
            shut = self._shut
        if shut:
            _shutdown(sock)

    def shutdown_all(self) -> None:
        """Shut down every socket in use, and any connected later: blocked reads end now."""
        with self._lock:
            self._shut = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def build_session(
    base_url: str, key: str, pool_maxsize: int, user_agent: str, sockets: SocketTracker
) -> requests.Session:
    """A session for one API base URL and key.

    ``trust_env`` stays on, so proxies (``HTTPS_PROXY``, ``NO_PROXY``...) and CA bundles from the
    environment apply. ``requests`` reads ``~/.netrc`` only for requests without auth, so with the
    session's :class:`~.auth.BearerAuth` it does not for the calls themselves; it still may on a
    redirect to another host (see :class:`~.auth.BearerAuth`).

    :param base_url: the API base URL; only its origin receives the key.
    :param key: the API key, already checked.
    :param pool_maxsize: connections kept per host.
    :param user_agent: the ``User-Agent`` header.
    :param sockets: where every connected socket is reported.
    """
    _install_log_filter()
    session = session_class()()
    adapter = _tracking_adapter_class()(sockets, pool_connections=4, pool_maxsize=pool_maxsize)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
    session.auth = BearerAuth(key, base_url)
    return session


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class _QueryFilter(logging.Filter):
    """Elides query strings from urllib3's DEBUG lines (``"GET /path?X-Tos-Signature=..."``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "?" in message:
            record.msg, record.args = elide_request_line_query(message), ()
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _QueryFilter) for f in logger.filters):
        logger.addFilter(_QueryFilter())


_SESSION_CLASS: type | None = None
_ADAPTER_CLASS: type | None = None


def session_class() -> type[requests.Session]:
    """``requests.Session`` that reads proxy and CA-bundle settings from the environment once per origin.

    With ``trust_env`` on, requests scans the whole environment (``*_proxy`` variables, then
    ``no_proxy``) on every request: about 0.5 ms of CPU each with the 70 variables of a small
    container, more in a Kubernetes pod with hundreds of service variables, and as much as the
    rest of a small generation request costs the client. The environment of a task does not change
    while it runs, so the result is kept per origin (scheme, host and port: what ``no_proxy``
    matches on) together with the session settings it was merged with. Calls that pass their own
    ``proxies``, ``verify`` or ``cert``, and redirects (``rebuild_proxies``), take requests' own
    path unchanged.
    """
    global _SESSION_CLASS
    if _SESSION_CLASS is not None:
        return _SESSION_CLASS
    from urllib.parse import urlsplit

    import requests

    class EnvironmentOnceSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self._environment: dict[tuple[Any, ...], Any] = {}

        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            if proxies or verify is not None or cert is not None or not self.trust_env:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            parts = urlsplit(url)
            key = (
                parts.scheme,
                parts.netloc.rpartition("@")[2].lower(),
                stream,
                tuple(self.proxies.items()),
                self.verify,
                self.cert,
            )
            settings: Any = self._environment.get(key)
            if settings is None:
                settings = super().merge_environment_settings(url, {}, stream, None, None)
                self._environment[key] = settings
            return {**settings, "proxies": dict(settings["proxies"])}

    _SESSION_CLASS = EnvironmentOnceSession
    return EnvironmentOnceSession


def _tracking_adapter_class() -> type:
    """``HTTPAdapter`` whose connections, direct or proxied, report their sockets (built once)."""
    global _ADAPTER_CLASS
    if _ADAPTER_CLASS is not None:
        return _ADAPTER_CLASS
    from requests.adapters import HTTPAdapter

    class TrackingAdapter(HTTPAdapter):
        def __init__(self, sockets: SocketTracker, **kwargs: Any) -> None:
            self._sockets = sockets
            self._tracked_pools: dict[type, type] = {}
            self._track_lock = threading.Lock()
            super().__init__(max_retries=0, **kwargs)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self._track(self.poolmanager)

        def proxy_manager_for(self, proxy: Any, **proxy_kwargs: Any) -> Any:
            # Proxied requests use a pool manager of their own per proxy (SOCKS included), built
            # lazily here: its pools must report their sockets too, or a cancel behind a proxy
            # would wait out read_timeout.
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            self._track(manager)
            return manager

        def _track(self, manager: Any) -> None:
            with self._track_lock:
                if getattr(manager, "_azerion_tracked", False):
                    return
                manager.pool_classes_by_scheme = {
                    scheme: self._tracked_pool(pool)
                    for scheme, pool in manager.pool_classes_by_scheme.items()
                }
                manager._azerion_tracked = True

        def _tracked_pool(self, pool: type) -> type:
            tracked = self._tracked_pools.get(pool)
            if tracked is None:
                connection = _tracked_connection(pool.ConnectionCls, self._sockets)  # type: ignore[attr-defined]
                tracked = type(f"Tracked{pool.__name__}", (pool,), {"ConnectionCls": connection})
                self._tracked_pools[pool] = tracked
            return tracked

    _ADAPTER_CLASS = TrackingAdapter
    return TrackingAdapter


def _tracked_connection(base: type, sockets: SocketTracker) -> type:
    """A subclass of the urllib3 connection class ``base`` that reports each socket it connects."""

    class Tracked(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            if self.sock is not None:
                sockets.track(self.sock)

    Tracked.__name__ = Tracked.__qualname__ = base.__name__
    return Tracked
