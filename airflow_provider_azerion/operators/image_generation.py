"""``ImageGenerationOperator``: prompts in, image files and JSON sidecars out.

DAG files import this module on every parse, so it imports nothing heavy at module level: the
hook, ``ObjectStoragePath``, threads and codecs are imported inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow.sdk import BaseOperator

from airflow_provider_azerion.constants import DEFAULT_CONN_ID, DEFAULT_MODEL

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_azerion.hooks.azerion import AzerionHook
    from airflow_provider_azerion.image_formats import ImageFormat
    from airflow_provider_azerion.models import (
        GeneratedImage,
        ImageGenerationRequest,
        ImageGenerationResponse,
        Usage,
    )
    from airflow_provider_azerion.outputs import OutputFolder, StoredImage


class ImageGenerationOperator(BaseOperator):
    """Generate images with the Azerion Intelligence API and store them with JSON sidecars.

    For each prompt ``i`` and each image ``j`` the API returns for it, the task writes
    ``{output_path}/{dag_id}/{run_id}/{task_id}[-{map_index}]/{i:04d}-{j}.{ext}`` (the extension
    from the image's real format) and a sidecar ``{i:04d}-{j}.json`` with the prompt, parameters,
    usage, checksum and task instance. Any store ``ObjectStoragePath`` supports works (``file://``,
    ``s3://``, ``gs://``...); no partially written file ever appears under a final name.

    Work is resumable: a retry (or a cleared task) skips, without calling the API, every prompt
    whose images and sidecars a previous try stored completely for the same prompt, model and
    parameters. Up to ``max_active_requests`` prompts are generated at once; when one fails, no
    further prompt starts, the ones in flight are stored, and the task fails with the first
    failure (by prompt index) so that the retry pays only for what is missing.

    Once its images are stored, the task writes ``manifest.jsonl`` to its folder: one line per
    image, that image's sidecar object, for every image of the task. A retry resumes from it with
    one listing and one read.

    The return value (XCom) stays under 64 KiB at any batch size: ``folder_uri``,
    ``manifest_uri``, ``count`` (images), ``chunks`` (ranges of the manifest, for mapping
    downstream tasks over a large batch; read one with
    :func:`~airflow_provider_azerion.outputs.read_manifest`) and, while they all fit, ``images``:
    one dict per image, ordered by prompt then image, with ``uri``, ``metadata_uri``,
    ``prompt_index``, ``image_index``, ``prompt``, ``revised_prompt``, ``model``, ``media_type``,
    ``bytes``, ``sha256``, ``created``. When the task has asset ``outlets``, each asset's event
    carries ``folder_uri``, ``manifest_uri``, ``count`` and, while they fit, ``uris`` in its extra.

    Spend guard: a task asked for more than ``max_prompts`` prompts or ``max_images`` images fails
    before sending anything.

    :param prompt: one prompt or a list of prompts (at most 4000 characters each). Templated;
        may be an upstream task's output (a str or a list), and works with
        ``.partial(...).expand(prompt=[...])``. A Jinja template renders to one str unless the DAG
        sets ``render_template_as_native_obj=True``.
    :param output_path: folder URL or ``ObjectStoragePath`` under which the task's folder is
        created, e.g. ``"file:///data/images/{{ ds }}/"`` or ``"s3://bucket/images/"``. Templated.
    :param model: model id. Templated.
    :param style: style such as ``"vivid"``; not sent when ``None``. Templated.
    :param response_format: ``"b64_json"`` (images inline) or ``"url"`` (downloaded by the hook).
    :param n: images per prompt (1-10); not sent when ``None``.
    :param extra_params: further API parameters sent as they are, e.g. ``{"size": "1024x1024",
        "output_format": "webp", "seed": 7}``. Templated. Must not set ``prompt``, ``model``,
        ``response_format`` or ``style``, which have their own arguments.
    :param conn_id: Azerion connection id. Templated.
    :param output_conn_id: Airflow connection for the output store (e.g. an AWS connection for
        ``s3://``); ``None`` uses the store's default credentials. Templated.
    :param max_active_requests: generations in flight at once inside this task (>= 1).
    :param overwrite: regenerate every prompt even if a previous try already stored it.
    :param max_prompts: most prompts one task may generate (default 1000); more fails the task
        before any request, as an upstream bug returning 100 000 prompts would otherwise be
        100 000 paid generations.
    :param max_images: most images one task may generate: prompts x images per prompt (``n``, or
        seedream's ``sequential_image_generation_options.max_images``). Default ``max_prompts``
        x images per prompt.
    :param log_each_image: one INFO line per image written (its URI, size and generation time).
        ``None`` (default) does so while a try generates at most 50 prompts; above that, each
        image's line is at DEBUG and an INFO progress line marks every 5 % of the prompts, so a
        task log stays readable at 10 000 prompts. Every image is in the manifest either way.
    """

    template_fields: Sequence[str] = (
        "prompt",
        "output_path",
        "model",
        "style",
        "extra_params",
        "conn_id",
        "output_conn_id",
    )
    template_fields_renderers = {"extra_params": "json", "prompt": "py"}
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        prompt: str | Sequence[str],
        output_path: str | ObjectStoragePath,
        model: str = DEFAULT_MODEL,
        style: str | None = None,
        response_format: str = "b64_json",
        n: int | None = None,
        extra_params: dict[str, Any] | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        output_conn_id: str | None = None,
        max_active_requests: int = 4,
        overwrite: bool = False,
        max_prompts: int = 1000,
        max_images: int | None = None,
        log_each_image: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.output_path = output_path
        self.model = model
        self.style = style
        self.response_format = response_format
        self.n = n
        self.extra_params = extra_params
        self.conn_id = conn_id
        self.output_conn_id = output_conn_id
        self.max_active_requests = max_active_requests
        self.overwrite = overwrite
        self.max_prompts = max_prompts
        self.max_images = max_images
        self.log_each_image = log_each_image
        self._running: tuple[AzerionHook, Any] | None = None
        if isinstance(max_active_requests, int):  # an XComArg is checked once resolved, in execute
            _check_max_active_requests(max_active_requests)

    # -- execution -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Generate every prompt not yet stored, store the images and the manifest, return a small XCom."""
        import time

        from airflow_provider_azerion.models import Usage

        started = time.monotonic()
        prompts = self._checked_prompts()
        folder, results = self._resume(context, prompts)
        skipped = len(results)
        todo = [index for index in range(len(prompts)) if index not in results]
        usage = Usage()
        if todo:
            try:
                usage = self._generate_all(todo, prompts, folder, results)
            except Exception:
                # List what this try did store, so that the retry needs no sidecar reads for it.
                try:
                    folder.write_manifest([image for index in sorted(results) for image in results[index]])
                except Exception as err:
                    self.log.warning("Could not update %s after the failure: %s", folder.manifest_uri, err)
                raise
        new_images = [image for index in todo for image in results[index]]
        self._written = (len(new_images), sum(image.metadata["bytes"] for image in new_images))
        self.log.info(
            "Wrote %d image(s), %d bytes, for %d prompt(s) in %.1f s; %d prompt(s) skipped as already "
            "stored; usage: input_tokens=%d output_tokens=%d total_tokens=%d; folder %s",
            *self._written,
            len(todo),
            time.monotonic() - started,
            skipped,
            usage.input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            folder.uri,
        )
        return self._publish(
            context, folder, [image for index in sorted(results) for image in results[index]]
        )

    def _resume(
        self, context: Context, prompts: list[str]
    ) -> tuple[OutputFolder, dict[int, list[StoredImage]]]:
        """Open the task's folder and find what earlier tries stored: one listing, the manifest, and
        sidecars only for prompts the manifest does not cover (after a crash)."""
        from airflow_provider_azerion.outputs import OutputFolder, TaskIdentity
        from airflow_provider_azerion.storage import resolve_output_root

        root = resolve_output_root(self.output_path, self.output_conn_id)
        folder = OutputFolder(root, TaskIdentity.from_context(context))
        if removed := folder.scan():
            self.log.info("Removed %d unfinished temporary file(s) left in %s", removed, folder.uri)
        results = folder.resume(prompts, model=self.model, params=self.api_params(), overwrite=self.overwrite)
        if results:
            self.log.info(
                "%d of %d prompt(s) already stored in %s by an earlier try; not generating them again "
                "(%d found in the manifest, %d from %d sidecar read(s))",
                len(results),
                len(prompts),
                folder.uri,
                folder.resume_report.from_manifest,
                folder.resume_report.from_sidecars,
                folder.resume_report.sidecar_reads,
            )
        return folder, results

    def _publish(self, context: Context, folder: OutputFolder, produced: list[StoredImage]) -> dict[str, Any]:
        """Write the manifest, annotate the outlets' asset events and return the XCom."""
        folder.write_manifest(produced)
        result = folder.task_result(produced)
        if "images" not in result:
            self.log.info(
                "The %d image entries do not fit in the XCom; it holds %s and %d chunk(s) of it to "
                "map over (read them with airflow_provider_azerion.outputs.read_manifest)",
                len(produced),
                folder.manifest_uri,
                len(result["chunks"]),
            )
        self._annotate_outlets(context, folder.asset_extra(produced))
        return result

    def _generate_all(
        self,
        todo: list[int],
        prompts: list[str],
        folder: OutputFolder,
        results: dict[int, list[StoredImage]],
    ) -> Usage:
        """Generate ``todo`` prompts with at most ``max_active_requests`` in flight; fill ``results``.

        Generation (and the download of ``url`` results) runs in worker threads; each prompt's
        images are stored by this thread as they arrive, while the next requests are already on
        their way. After a failure no further prompt starts; those in flight finish and are
        stored (they are paid for), then the first failure by prompt index is raised. When the
        task is killed (``on_kill``) or times out, the HTTP calls in flight are cancelled at once,
        results that already arrived are stored, and the task ends within seconds.
        """
        import threading

        from airflow_provider_azerion.concurrency import run_bounded
        from airflow_provider_azerion.exceptions import AzerionCancelledError
        from airflow_provider_azerion.hooks.azerion import AzerionHook
        from airflow_provider_azerion.models import Usage
        from airflow_provider_azerion.storage import CommitError

        request = self.generation_request()
        hook = AzerionHook(conn_id=self.conn_id, concurrency=self.max_active_requests)
        cancel = threading.Event()
        self._running = (hook, cancel)
        totals = [Usage()]
        progress = _Progress(self.log, len(todo), self.log_each_image)

        def store(index: int, generated: _Generated) -> None:
            results[index] = self._store_prompt(folder, index, prompts[index], request, generated, progress)
            totals[0] = totals[0] + generated.response.usage

        try:
            outcome = run_bounded(
                todo,
                lambda index: self._generate_one(hook, request, index, prompts[index]),
                store,
                limit=self.max_active_requests,
                cancel=cancel,
                on_abort=hook.cancel,
                name="azerion-generate",
                # One at a time, the task's own thread does it all: thread hand-offs would cost
                # more than they overlap (the disk flushes still happen off-thread).
                inline=self.max_active_requests == 1,
            )
        except BaseException:
            folder.flush(timeout=5)  # what arrived is written; a stuck disk must not hold the stop
            stored_count = sum(1 for index in todo if index in results)
            self.log.error(
                "Task stopped while generating: %d of %d prompt(s) stored in this try; requests in "
                "flight were cancelled and may have been billed. A retry generates only what is missing.",
                stored_count,
                len(todo),
            )
            raise
        finally:
            self._running = None
            hook.close()
        failures = dict(outcome.failures)
        try:
            folder.flush()  # every stored prompt durable under its final name before anything relies on it
        except CommitError as err:
            failures[err.label] = err
        finally:
            folder.close()
        for index, failure in list(failures.items()):
            if isinstance(failure, CommitError):  # the prompt whose files could not be written
                del failures[index]
                failures[failure.label] = failure.error
                for lost in failure.lost:  # it and the prompts dropped with it: not stored after all
                    results.pop(lost, None)
        if cancel.is_set() and not failures:
            failures = {outcome.not_started[0]: AzerionCancelledError("the task was stopped (on_kill)")}
        if failures:
            for index in sorted(failures)[1:]:  # the first one is raised below
                self.log.error("Prompt %d also failed: %s", index, failures[index])
            first = min(failures)
            stored_count = sum(1 for index in todo if index in results)
            self.log.error(
                "Prompt(s) %s failed; %d prompt(s) stored, %d not started. A retry generates only "
                "what is missing.",
                sorted(failures),
                stored_count,
                len(outcome.not_started),
            )
            raise _for_prompt(failures[first], first, prompts[first])
        return totals[0]

    def _generate_one(
        self, hook: AzerionHook, request: ImageGenerationRequest, index: int, prompt: str
    ) -> _Generated:
        """Generate one prompt and check every image (runs in a worker thread; stores nothing)."""
        import time

        from airflow_provider_azerion.exceptions import AzerionResponseError

        started = time.monotonic()
        response = hook.generate(request, prompt)
        if not response.images:  # the hook refuses an empty "data", but a prompt must never store nothing
            raise AzerionResponseError("the API returned no images")
        images = [
            (*self._image_bytes(hook, image_index, image), image.revised_prompt)
            for image_index, image in enumerate(response.images)
        ]
        return _Generated(response, images, time.monotonic() - started)

    def _store_prompt(
        self,
        folder: OutputFolder,
        index: int,
        prompt: str,
        request: ImageGenerationRequest,
        generated: _Generated,
        progress: _Progress,
    ) -> list[StoredImage]:
        """Store one prompt's images and sidecars (in the task's main thread)."""
        response = generated.response
        common = {
            "prompt": prompt,
            "model": request.model,
            "style": request.style,
            "params": request.api_params(),
            "created": response.created.isoformat(),
            "usage": response.usage.to_dict(),
            "request_id": response.request_id,
        }
        stored = folder.store_prompt(index, generated.images, common)
        if progress.each_image or progress.debug:
            log = self.log.info if progress.each_image else self.log.debug
            for image in stored:
                log(
                    "Prompt %d image %d: wrote %s (%d bytes, generated in %.2f s)",
                    index,
                    image.metadata["image_index"],
                    image.uri,
                    image.metadata["bytes"],
                    generated.seconds,
                )
        progress.stored(stored)
        return stored

    @staticmethod
    def _image_bytes(hook: AzerionHook, image_index: int, image: GeneratedImage) -> tuple[bytes, ImageFormat]:
        """The decoded or downloaded bytes of one image and their real format."""
        import binascii

        from airflow_provider_azerion.exceptions import AzerionResponseError
        from airflow_provider_azerion.image_formats import sniff_image_format

        if image.b64_json is not None:
            try:
                data = _decode_base64(image.b64_json)
            except (binascii.Error, ValueError):
                raise AzerionResponseError(
                    f"image {image_index}: b64_json is not valid base64 ({len(image.b64_json)} characters)"
                ) from None
        elif image.url is not None:
            data = hook.download_image(image.url)
        else:
            raise AzerionResponseError(f"image {image_index}: the API sent neither b64_json nor url")
        fmt = sniff_image_format(data)
        if fmt is None:
            raise AzerionResponseError(
                f"image {image_index}: the {len(data)} bytes received are not a PNG, JPEG, WebP or GIF "
                f"image (they start with {data[:16]!r})"
            )
        return data, fmt

    def on_kill(self) -> None:
        """Stop at once: no new prompt starts and the HTTP calls in flight are cancelled.

        Airflow calls this when the task is killed or its ``execution_timeout`` passes. Prompts
        already stored stay stored; a retry generates only what is missing.
        """
        running = self._running
        if running is not None:
            hook, cancel = running
            cancel.set()
            hook.cancel()

    def _annotate_outlets(self, context: Context, extra: dict[str, Any]) -> None:
        """Put ``extra`` (bounded, from ``OutputFolder.asset_extra``) into each outlet asset's event."""
        if not self.outlets:
            return
        from airflow.sdk import Asset
        from airflow.sdk.definitions.asset import AssetRef

        for outlet in self.outlets:
            # An AssetAlias has no event of its own until a concrete asset is added to it.
            if isinstance(outlet, (Asset, AssetRef)):
                context["outlet_events"][outlet].extra.update(extra)

    # -- arguments -------------------------------------------------------------------------------

    def generation_request(self) -> ImageGenerationRequest:
        """The validated request every prompt of this task is generated with.

        :raises AzerionValidationError: naming the argument at fault.
        """
        from airflow_provider_azerion.models import ImageGenerationRequest

        return ImageGenerationRequest.of(
            self.model, self.response_format, self.style, **self._extra_api_params()
        )

    def api_params(self) -> dict[str, Any]:
        """Everything sent to the API besides the prompt, as the hook sends it (``None`` omitted).

        Recorded in each sidecar; a stored prompt is reused only if these did not change.
        """
        return self.generation_request().api_params()

    def _extra_api_params(self) -> dict[str, Any]:
        extra = dict(self.extra_params or {})
        if self.n is not None:
            extra["n"] = self.n
        return {key: value for key, value in extra.items() if value is not None}

    def _checked_prompts(self) -> list[str]:
        """Validate every argument before anything is sent; return the prompts as a list.

        :raises AzerionValidationError: naming the argument (and prompt index) at fault.
        """
        from airflow_provider_azerion.exceptions import AzerionValidationError
        from airflow_provider_azerion.models import RESERVED_PARAMS, ImageGenerationRequest

        _check_max_active_requests(self.max_active_requests)
        if self.extra_params is not None and not isinstance(self.extra_params, dict):
            raise AzerionValidationError(
                f"extra_params must be a dict of API parameters, got {type(self.extra_params).__name__}"
            )
        for key in RESERVED_PARAMS:
            if key in (self.extra_params or {}):
                raise AzerionValidationError(
                    f"extra_params must not set {key!r}; use the operator's {key} argument instead"
                )
        if self.n is not None and "n" in (self.extra_params or {}):
            raise AzerionValidationError("n is set both as an argument and in extra_params; set it once")

        prompt = self.prompt
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
            prompts = list(prompt)
        else:
            raise AzerionValidationError(
                f"prompt must be a str or a list of str, got {type(prompt).__name__}"
            )
        if not prompts:
            raise AzerionValidationError("prompt is an empty list; give at least one prompt")

        # The request object's rules, so the operator never drifts from what the hook sends:
        # first the arguments shared by all prompts, then each prompt.
        request = self.generation_request()
        # The spend guard, before anything is sent: every prompt is a paid generation.
        for name in ("max_prompts", "max_images"):
            limit = getattr(self, name)
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise AzerionValidationError(f"{name} must be an int >= 1, got {limit!r}")
        if len(prompts) > self.max_prompts:
            raise AzerionValidationError(
                f"prompt holds {len(prompts)} prompts, more than max_prompts={self.max_prompts}; nothing "
                f"was sent. If that many paid generations are intended, raise max_prompts (e.g. "
                f"max_prompts={len(prompts)}) or split the prompts over mapped tasks with .expand()"
            )
        per_prompt = request.max_images_per_prompt
        max_images = self.max_images if self.max_images is not None else self.max_prompts * per_prompt
        if len(prompts) * per_prompt > max_images:
            raise AzerionValidationError(
                f"{len(prompts)} prompts x up to {per_prompt} images each = {len(prompts) * per_prompt} "
                f"images, more than max_images={max_images}; nothing was sent. If that many paid images "
                f"are intended, raise max_images (e.g. max_images={len(prompts) * per_prompt}), or ask "
                "for fewer images per prompt (n, or sequential_image_generation_options.max_images)"
            )
        for index, text in enumerate(prompts):
            try:
                ImageGenerationRequest.check_prompt(text)
            except AzerionValidationError as err:
                raise AzerionValidationError(f"prompt {index}: {err}") from None
        return prompts

    # -- lineage ---------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the output root (``output_path``) as this task's one output dataset.

        One dataset per task, stable from run to run, named by OpenLineage's conventions
        (``s3://bucket`` + key prefix, ``file`` + absolute path), with the images and bytes this
        try wrote as output statistics. Called by the OpenLineage provider when it is installed
        (``pip install "airflow-provider-azerion[openlineage]"``); returns ``None`` without it.
        """
        from airflow_provider_azerion.lineage import output_lineage

        images, size = getattr(self, "_written", (None, None))
        return output_lineage(
            self.output_path, self.output_conn_id, images_written=images, bytes_written=size
        )


#: While a try generates at most this many prompts, each image gets an INFO line by default.
LOG_EACH_IMAGE_UP_TO = 50
#: Above it, an INFO progress line marks every 1/PROGRESS_STEPS of the prompts.
PROGRESS_STEPS = 20


class _Progress:
    """Per-image log lines for small batches, a progress line every 5 % for large ones."""

    def __init__(self, log: Any, total: int, each_image: bool | None) -> None:
        import logging
        import time

        self.log = log
        self.total = total
        self.each_image = total <= LOG_EACH_IMAGE_UP_TO if each_image is None else each_image
        is_enabled = getattr(log, "isEnabledFor", None)
        self.debug = bool(is_enabled(logging.DEBUG)) if is_enabled is not None else False
        self.step = max(1, -(-total // PROGRESS_STEPS))  # ceil
        self.next_line = self.step
        self.prompts = self.images = self.bytes = 0
        self.started = time.monotonic()

    def stored(self, images: list[StoredImage]) -> None:
        """Count one stored prompt; log progress when it crosses the next step."""
        self.prompts += 1
        self.images += len(images)
        self.bytes += sum(image.metadata["bytes"] for image in images)
        if self.each_image or self.prompts < self.next_line:
            return
        import time

        self.next_line += self.step
        elapsed = time.monotonic() - self.started
        self.log.info(
            "Progress: %d of %d prompt(s) stored (%d%%), %d image(s), %d bytes, in %.1f s (%.1f prompts/s); "
            "latest %s",
            self.prompts,
            self.total,
            100 * self.prompts // self.total,
            self.images,
            self.bytes,
            elapsed,
            self.prompts / elapsed if elapsed > 0 else 0.0,
            images[-1].uri if images else "-",
        )


class _Generated(NamedTuple):
    """One prompt's response and its checked images, between generation and storage."""

    response: ImageGenerationResponse
    images: list[tuple[bytes, ImageFormat, str | None]]
    seconds: float


def _decode_base64(text: str) -> bytes:
    """``base64.b64decode(text, validate=True)``, without first copying ``text`` to bytes.

    ``b64decode`` encodes a str to ASCII bytes before decoding: for a 16 MiB image that is a
    22 MiB copy at the moment memory peaks. ``binascii`` reads an ASCII str in place.

    :raises binascii.Error: on characters outside the base64 alphabet or bad padding.
    :raises ValueError: on non-ASCII characters.
    """
    import binascii
    import sys

    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(text, strict_mode=True)  # what b64decode(validate=True) runs
    import re

    # Python 3.10's b64decode(validate=True): this check, then a lenient decode.
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise binascii.Error("Non-base64 digit found")
    return binascii.a2b_base64(text)


def _check_max_active_requests(value: Any) -> None:
    from airflow_provider_azerion.exceptions import AzerionValidationError

    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AzerionValidationError(f"max_active_requests must be an int >= 1, got {value!r}")


def _shorten(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _for_prompt(err: BaseException, index: int, prompt: str) -> BaseException:
    """``err`` with a message naming the prompt it belongs to, its type kept when it is ours.

    Keeping the type matters: ``AirflowFailException`` subclasses must still fail the task
    without retries, and retryable ones must still retry.
    """
    from airflow.sdk.exceptions import AirflowException

    from airflow_provider_azerion.exceptions import AzerionError

    where = f"prompt {index} ({_shorten(prompt)!r})"
    if isinstance(err, AzerionError):
        err.args = (f"{where}: {err}",)
        return err
    wrapped = AirflowException(f"{where}: {type(err).__name__}: {err}")
    wrapped.__cause__ = err
    return wrapped
