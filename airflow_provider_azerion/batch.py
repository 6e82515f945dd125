"""One task's run over its prompts: generate, check, store, stop on the first failure, report.

:class:`PromptBatch` sends the prompts a task still needs, at most ``max_active_requests`` at once
(:func:`~airflow_provider_azerion.concurrency.run_bounded`), checks every image it gets back (real
image bytes, decoded or downloaded), and stores each prompt's images as soon as they arrive while
the next requests are already on their way. Nothing it was paid for is dropped:

- after a failure no further prompt starts; the prompts in flight finish and are stored, then the
  first failure by prompt index is raised, naming its prompt;
- a kill (:meth:`PromptBatch.cancel`, the operator's ``on_kill``) or a timeout cancels the HTTP
  calls in flight, stores what already arrived, and ends within seconds;
- whatever ends the run, the images stored so far are listed in the manifest before the error
  leaves, so the retry pays only for what is missing; a prompt whose files could not be written
  is never listed.

Imported inside ``execute`` only: it pulls in threads, codecs and the hook.
"""

from __future__ import annotations

import binascii
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_azerion.concurrency import run_bounded
from airflow_provider_azerion.exceptions import AzerionCancelledError, AzerionError, AzerionResponseError
from airflow_provider_azerion.image_formats import sniff_image_format
from airflow_provider_azerion.models import Usage
from airflow_provider_azerion.progress import Progress
from airflow_provider_azerion.storage import CommitError

if TYPE_CHECKING:
    from airflow_provider_azerion.folder import OutputFolder
    from airflow_provider_azerion.hooks.azerion import AzerionHook
    from airflow_provider_azerion.image_formats import ImageFormat
    from airflow_provider_azerion.metrics import TaskMetrics
    from airflow_provider_azerion.models import GeneratedImage, GenerationPlan, ImageGenerationResponse
    from airflow_provider_azerion.sidecar import StoredImage

#: Seconds a stopping task waits for its last writes to reach the disk.
STOP_FLUSH_SECONDS = 5.0


class Generated(NamedTuple):
    """One prompt's response and its checked images, between generation and storage."""

    response: ImageGenerationResponse
    images: list[tuple[bytes, ImageFormat, str | None]]
    seconds: float


class PromptBatch:
    """Generate and store the prompts of one task that earlier tries did not store.

    :param hook: the hook to generate with (closed by :meth:`run`).
    :param plan: the task's prompts and request.
    :param folder: the task's opened folder.
    :param stored: what earlier tries stored, by prompt index; filled in as prompts are stored.
    :param max_active_requests: generations in flight at once.
    :param log: the task's logger.
    :param log_each_image: see the operator's argument of that name.
    :param metrics: where generations, images, bytes and tokens are counted.
    """

    def __init__(
        self,
        hook: AzerionHook,
        plan: GenerationPlan,
        folder: OutputFolder,
        stored: dict[int, list[StoredImage]],
        *,
        max_active_requests: int,
        log: Any,
        log_each_image: bool | None = None,
        metrics: TaskMetrics | None = None,
    ) -> None:
        from airflow_provider_azerion.metrics import TaskMetrics

        self.hook = hook
        self.plan = plan
        self.folder = folder
        self.stored = stored
        self.todo = [index for index in range(len(plan.prompts)) if index not in stored]
        self.max_active_requests = max_active_requests
        self.log = log
        self.progress = Progress(log, len(self.todo), log_each_image)
        self.usage = Usage()
        self.metrics = metrics or TaskMetrics()
        self._cancel = threading.Event()

    @property
    def images(self) -> list[StoredImage]:
        """Every stored image of the task (earlier tries' too), in prompt then image order."""
        return [image for index in sorted(self.stored) for image in self.stored[index]]

    @property
    def new_images(self) -> list[StoredImage]:
        """The images this run stored."""
        return [image for index in self.todo if index in self.stored for image in self.stored[index]]

    def cancel(self) -> None:
        """Stop now, from any thread: nothing new starts and the HTTP calls in flight are cancelled."""
        self._cancel.set()
        self.hook.cancel()

    def run(self) -> Usage:
        """Generate and store every prompt still to do; return the usage the API reported.

        :raises: the first failure by prompt index, its message naming the prompt; a timeout or
            kill raised in this thread as it was.
        """
        if not self.todo:
            self.hook.close()
            return self.usage
        try:
            failures, not_started = self._generate_and_store()
        except BaseException:
            self._stop_flushing()
            self.log.error(
                "Task stopped while generating: %d of %d prompt(s) stored in this try; requests in "
                "flight were cancelled and may have been billed. A retry generates only what is missing.",
                len(self.new_images_indexes()),
                len(self.todo),
            )
            self._write_manifest_after_failure()
            raise
        finally:
            self.hook.close()
        if failures:
            self._write_manifest_after_failure()
            raise self._first(failures, not_started)
        return self.usage

    def log_summary(self, seconds: float) -> None:
        """The task log's one line about this run: what was written, skipped and used."""
        new_images = self.new_images
        usage = self.usage
        self.log.info(
            "Wrote %d image(s), %d bytes, for %d prompt(s) in %.1f s; %d prompt(s) skipped as already "
            "stored; usage: input_tokens=%d output_tokens=%d total_tokens=%d; folder %s",
            len(new_images),
            sum(image.metadata["bytes"] for image in new_images),
            len(self.todo),
            seconds,
            len(self.plan.prompts) - len(self.todo),
            usage.input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            self.folder.uri,
        )

    def new_images_indexes(self) -> list[int]:
        """Prompts this run stored."""
        return [index for index in self.todo if index in self.stored]

    # -- the run ---------------------------------------------------------------------------------

    def _generate_and_store(self) -> tuple[dict[int, BaseException], list[int]]:
        outcome = run_bounded(
            self.todo,
            self._generate,
            self._store,
            limit=self.max_active_requests,
            cancel=self._cancel,
            on_abort=self.hook.cancel,
            name="azerion-generate",
            # One at a time, the task's own thread does it all: thread hand-offs would cost more
            # than they overlap (the disk flushes still happen off-thread).
            inline=self.max_active_requests == 1,
        )
        failures = dict(outcome.failures)
        try:
            self.folder.flush()  # every stored prompt durable under its final name before it is relied on
        except OSError as err:
            failures.update(self._forget_lost(err))
        finally:
            self.folder.close()
        for index, failure in list(failures.items()):
            if isinstance(failure, CommitError):  # raised by store(): the committer failed earlier
                del failures[index]
                failures.update(self._forget_lost(failure))
        if self._cancel.is_set() and not failures and outcome.not_started:
            failures = {outcome.not_started[0]: AzerionCancelledError("the task was stopped (on_kill)")}
        # Cancelled with nothing left to start: every prompt was stored, the run is complete.
        return failures, outcome.not_started

    def _generate(self, index: int) -> Generated:
        """Generate one prompt and check every image (in a worker thread; stores nothing)."""
        started = time.monotonic()
        response = self.hook.generate(self.plan.request, self.plan.prompts[index])
        self.metrics.generation(time.monotonic() - started)
        if not response.images:  # the hook refuses an empty "data", but a prompt must never store nothing
            raise AzerionResponseError("the API returned no images")
        images = [
            (*self._image_bytes(image_index, image), image.revised_prompt)
            for image_index, image in enumerate(response.images)
        ]
        return Generated(response, images, time.monotonic() - started)

    def _image_bytes(self, image_index: int, image: GeneratedImage) -> tuple[bytes, ImageFormat]:
        """The decoded or downloaded bytes of one image and their real format."""
        if image.b64_json is not None:
            try:
                data = decode_base64(image.b64_json)
            except (binascii.Error, ValueError):
                raise AzerionResponseError(
                    f"image {image_index}: b64_json is not valid base64 ({len(image.b64_json)} characters)"
                ) from None
        elif image.url is not None:
            data = self.hook.download_image(image.url)
        else:
            raise AzerionResponseError(f"image {image_index}: the API sent neither b64_json nor url")
        fmt = sniff_image_format(data)
        if fmt is None:
            raise AzerionResponseError(
                f"image {image_index}: the {len(data)} bytes received are not a PNG, JPEG, WebP or GIF "
                f"image (they start with {data[:16]!r})"
            )
        return data, fmt

    def _store(self, index: int, generated: Generated) -> None:
        """Store one prompt's images and sidecars (in the task's main thread)."""
        request, response = self.plan.request, generated.response
        common = {
            "prompt": self.plan.prompts[index],
            "model": request.model,
            "style": request.style,
            "params": request.api_params(),
            "created": response.created.isoformat(),
            "usage": response.usage.to_dict(),
            "request_id": response.request_id,
        }
        stored = self.folder.store_prompt(index, generated.images, common)
        self.stored[index] = stored
        self.usage = self.usage + response.usage
        self.metrics.stored(
            len(stored), sum(image.metadata["bytes"] for image in stored), response.usage.total_tokens
        )
        self.progress.stored(index, stored, generated.seconds)

    # -- endings ---------------------------------------------------------------------------------

    def _stop_flushing(self) -> None:
        """On a kill or timeout: what arrived is written, a stuck disk does not hold the stop, and
        a failed write neither hides the reason for the stop nor leaves its prompt listed."""
        try:
            self.folder.flush(timeout=STOP_FLUSH_SECONDS)
        except OSError as err:
            for index, failure in self._forget_lost(err).items():
                self.log.error("Prompt %d could not be written while stopping: %s", index, failure)
        finally:
            self.folder.close()

    def _forget_lost(self, err: BaseException) -> dict[int, BaseException]:
        """The failure of a commit, by prompt; its prompts are no longer counted as stored."""
        if not isinstance(err, CommitError):
            raise err
        for lost in err.lost:
            self.stored.pop(lost, None)
        return {err.label: err.error}

    def _write_manifest_after_failure(self) -> None:
        """List what is stored, so that the retry needs no sidecar reads for it."""
        try:
            self.folder.write_manifest(self.images)
        except Exception as err:
            self.log.warning("Could not update %s after the failure: %s", self.folder.manifest_uri, err)

    def _first(self, failures: dict[int, BaseException], not_started: Sequence[int]) -> BaseException:
        for index in sorted(failures)[1:]:  # the first one is raised
            self.log.error("Prompt %d also failed: %s", index, failures[index])
        self.log.error(
            "Prompt(s) %s failed; %d prompt(s) stored, %d not started. A retry generates only what "
            "is missing.",
            sorted(failures),
            len(self.new_images_indexes()),
            len(not_started),
        )
        first = min(failures)
        return for_prompt(failures[first], first, self.plan.prompts[first])


def for_prompt(err: BaseException, index: int, prompt: str) -> BaseException:
    """``err`` with its message naming the prompt it belongs to, its type kept when it is ours.

    Keeping the type matters: ``AirflowFailException`` subclasses must still fail the task without
    retries, and retryable ones must still retry. The context survives a pickle (Airflow ships
    exceptions between processes).
    """
    from airflow.sdk.exceptions import AirflowException

    where = f"prompt {index} ({shorten(prompt)!r})"
    if isinstance(err, AzerionError):
        err.add_context(where)
        return err
    wrapped = AirflowException(f"{where}: {type(err).__name__}: {err}")
    wrapped.__cause__ = err
    return wrapped


def shorten(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decode_base64(text: str) -> bytes:
    """``base64.b64decode(text, validate=True)``, without first copying ``text`` to bytes.

    ``b64decode`` encodes a str to ASCII bytes before decoding: for a 16 MiB image that is a
    22 MiB copy at the moment memory peaks. ``binascii`` reads an ASCII str in place.

    :raises binascii.Error: on characters outside the base64 alphabet or bad padding.
    :raises ValueError: on non-ASCII characters.
    """
    import sys

    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(text, strict_mode=True)  # what b64decode(validate=True) runs
    import re

    # Python 3.10's b64decode(validate=True): this check, then a lenient decode.
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise binascii.Error("Non-base64 digit found")
    return binascii.a2b_base64(text)
