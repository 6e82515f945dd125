"""What the emulator remembers between requests, and the knobs that tune it.

Kept free of web-framework imports so that :class:`RequestRecord` and the server's attributes can
be used without loading FastAPI. The app runs on the server's event-loop thread while tests read
the log from theirs, so everything shared is guarded by a lock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from airflow_provider_azerion.emulator.faults import FaultPlan
from airflow_provider_azerion.emulator.rules import URL_EXPIRY_SECONDS

#: Files kept for ``url`` responses before the oldest are evicted.
MAX_STORED_FILES = 1000
#: Bytes kept for ``url`` responses before the oldest files are evicted.
MAX_STORED_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator answered (or dropped), on either origin.

    :param method: HTTP method.
    :param path: Request path, e.g. ``/v1/images/generations`` or
        ``/ark-content-generation/<name>``; never the query string (on a result link, a credential).
    :param status: HTTP status sent; ``0`` when no response was sent (the ``drop`` fault).
    :param started: ``time.monotonic()`` when the request reached the app.
    :param finished: ``time.monotonic()`` when the response started (headers about to be sent) or the
        connection was dropped. Records are logged at that moment, so a client holding a response
        always finds its record; they are ordered by this time.
    :param model: The ``model`` of a generation request, if it had a string one.
    :param prompt: The ``prompt`` of a generation request, if it had a string one.
    :param fault: The injected fault kind (``"503"``, ``"drop"``...), ``"max_concurrency"`` when
        the concurrency cap rejected the request, else ``None``.
    :param request_id: The request id sent with the response (``x-request-id`` on the API,
        ``x-tos-request-id`` on result files).
    :param authorization: Whether the request carried an ``Authorization`` header (its value is
        never kept), e.g. to prove a client does not send its API key with result downloads.
    :param origin: ``"api"`` for the API origin, ``"files"`` for the result-file origin.
    """

    method: str
    path: str
    status: int
    started: float
    finished: float
    model: str | None
    prompt: str | None
    fault: str | None
    request_id: str = ""
    authorization: bool = False
    origin: str = "api"


@dataclass(frozen=True)
class StoredFile:
    """An image served by the result-file origin at ``/ark-content-generation/<name>``.

    :param content: The encoded image.
    :param content_type: Its media type.
    """

    content: bytes
    content_type: str


class FileStore:
    """Generated images for ``url`` responses, kept in memory and evicted oldest first.

    :param max_files: How many files to keep at most.
    :param max_bytes: How many bytes to keep at most.
    """

    def __init__(self, max_files: int = MAX_STORED_FILES, max_bytes: int = MAX_STORED_BYTES) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def put(self, name: str, content: bytes, content_type: str) -> None:
        """Store a file under ``name``, evicting the oldest ones beyond the bounds."""
        with self._lock:
            self._files[name] = StoredFile(content, content_type)
            self._size += len(content)
            # Always keep the newest file, even when it alone exceeds the byte budget.
            while len(self._files) > 1 and (len(self._files) > self.max_files or self._size > self.max_bytes):
                _, evicted = self._files.popitem(last=False)
                self._size -= len(evicted.content)

    def get(self, name: str) -> StoredFile | None:
        """Return the file stored under ``name``, or ``None``."""
        with self._lock:
            return self._files.get(name)

    def clear(self) -> None:
        """Forget every file."""
        with self._lock:
            self._files.clear()
            self._size = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)


@dataclass
class EmulatorState:
    """Knobs, request log, counters, faults and files of one emulator.

    The knobs are read on every request, so changing them on a running server takes effect at once.

    :param api_key: The only bearer token accepted.
    :param latency: Seconds slept by every generation request before rendering.
    :param max_concurrency: Generation requests allowed in flight; more get a 429. ``None``: no cap.
    :param retry_after: Seconds advertised in ``Retry-After`` / ``retry-after-ms`` on 429s.
    :param max_side: Longest side of rendered images; larger requests are scaled down keeping the
        aspect ratio. ``None``: render the requested size.
    :param noise: Render incompressible noise instead of a gradient with the prompt.
    :param seed: Seed used when a request gives none (or ``0``, which the real API treats as random).
    :param url_expiry: Seconds a result link stays valid (its ``X-Tos-Expires``).
    :param forbidden_models: Model ids the key may not use: generations with them get a 403.
    :param revise_prompts: Return a ``revised_prompt`` with every image; by default none is sent.
    :param clock_offset: Seconds added to the wall clock wherever the emulator reads the time
        (``created``, link signing and expiry), so a test can move time forward.
    :param files_url: Root URL of the result-file origin, set by the server once it is bound.
    """

    api_key: str = "emulator-key"
    latency: float = 0.0
    max_concurrency: int | None = None
    retry_after: float = 1.0
    max_side: int | None = None
    noise: bool = False
    seed: int = 0
    url_expiry: int = URL_EXPIRY_SECONDS
    forbidden_models: frozenset[str] = frozenset()
    revise_prompts: bool = False
    clock_offset: float = 0.0
    files_url: str = ""
    #: Signs result links; new for every emulator, so links of another run never verify.
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    faults: FaultPlan = field(default_factory=FaultPlan)
    files: FileStore = field(default_factory=FileStore)
    in_flight: int = 0
    peak_concurrency: int = 0
    generation_count: int = 0
    _records: list[RequestRecord] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        """The emulator's Unix time: the wall clock plus :attr:`clock_offset`."""
        return time.time() + self.clock_offset

    def record(self, record: RequestRecord) -> None:
        """Append a record to the request log."""
        with self._lock:
            self._records.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._records)

    def generation_started(self) -> int:
        """Count a generation request entering the app; return how many are now in flight."""
        with self._lock:
            self.generation_count += 1
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
            return self.in_flight

    def generation_finished(self) -> None:
        """Count a generation request leaving the app."""
        with self._lock:
            self.in_flight -= 1

    def reset(self) -> None:
        """Clear the request log, counters, faults and stored files (knobs are kept)."""
        with self._lock:
            self._records.clear()
            self.peak_concurrency = self.in_flight
            self.generation_count = 0
        self.faults.clear()
        self.files.clear()
