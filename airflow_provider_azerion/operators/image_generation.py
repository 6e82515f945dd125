"""``ImageGenerationOperator``: prompts in, image files and JSON sidecars out.

DAG files import this module on every parse, so it imports nothing heavy at module level: the
hook, ``ObjectStoragePath``, threads and codecs are imported inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_azerion.constants import DEFAULT_CONN_ID, DEFAULT_MODEL

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_azerion.hooks.azerion import AzerionHook
    from airflow_provider_azerion.image_formats import ImageFormat
    from airflow_provider_azerion.models import GeneratedImage, Usage
    from airflow_provider_azerion.outputs import OutputFolder, StoredImage

#: Above this many threads the hook's default HTTP pool (32 connections) would be too small.
_DEFAULT_POOL_MAXSIZE = 32
#: Arguments with their own operator parameter; setting them in ``extra_params`` is a mistake.
_RESERVED_EXTRA_PARAMS = ("prompt", "model", "response_format", "style")


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

    The return value (XCom) is one dict per image, ordered by prompt then image: ``uri``,
    ``metadata_uri``, ``prompt_index``, ``image_index``, ``prompt``, ``revised_prompt``,
    ``model``, ``media_type``, ``bytes``, ``sha256``, ``created``. When the task has asset
    ``outlets``, each asset's event carries ``{"uris": [...], "count": N}`` in its extra.

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
        if isinstance(max_active_requests, int):  # an XComArg is checked once resolved, in execute
            _check_max_active_requests(max_active_requests)

    # -- execution -------------------------------------------------------------------------------

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Generate every prompt not yet stored, store the images, return one XCom dict per image."""
        import time

        from airflow_provider_azerion.models import Usage
        from airflow_provider_azerion.outputs import OutputFolder, TaskIdentity
        from airflow_provider_azerion.storage import resolve_output_root

        started = time.monotonic()
        prompts = self._checked_prompts()
        params = self.api_params()
        root = resolve_output_root(self.output_path, self.output_conn_id)
        folder = OutputFolder(root, TaskIdentity.from_context(context))
        if removed := folder.scan():
            self.log.info("Removed %d unfinished temporary file(s) left in %s", removed, folder.uri)

        results: dict[int, list[StoredImage]] = {}
        if not self.overwrite:
            for index, prompt in enumerate(prompts):
                stored = folder.find_stored(index, {"prompt": prompt, "model": self.model, "params": params})
                if stored is not None:
                    results[index] = stored
        skipped = len(results)
        todo = [index for index in range(len(prompts)) if index not in results]
        if skipped:
            self.log.info(
                "%d of %d prompt(s) already stored in %s by an earlier try; not generating them again",
                skipped,
                len(prompts),
                folder.uri,
            )

        usage = Usage()
        if todo:
            usage = self._generate_all(todo, prompts, folder, results)

        produced = [image for index in sorted(results) for image in results[index]]
        new_images = [image for index in todo for image in results[index]]
        self.log.info(
            "Wrote %d image(s), %d bytes, for %d prompt(s) in %.1f s; %d prompt(s) skipped as already "
            "stored; usage: input_tokens=%d output_tokens=%d total_tokens=%d; folder %s",
            len(new_images),
            sum(image.metadata["bytes"] for image in new_images),
            len(todo),
            time.monotonic() - started,
            skipped,
            usage.input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            folder.uri,
        )
        self._annotate_outlets(context, [image.uri for image in produced])
        return [image.to_xcom() for image in produced]

    def _generate_all(
        self,
        todo: list[int],
        prompts: list[str],
        folder: OutputFolder,
        results: dict[int, list[StoredImage]],
    ) -> Usage:
        """Generate ``todo`` prompts with at most ``max_active_requests`` in flight; fill ``results``.

        After a failure no further prompt is submitted; those in flight finish and are stored
        (they are paid for), then the first failure by prompt index is raised.
        """
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        from airflow_provider_azerion.hooks.azerion import AzerionHook
        from airflow_provider_azerion.models import Usage

        overrides = (
            {"pool_maxsize": self.max_active_requests}
            if self.max_active_requests > _DEFAULT_POOL_MAXSIZE
            else {}
        )
        hook = AzerionHook(conn_id=self.conn_id, **overrides)
        usage = Usage()
        failures: dict[int, BaseException] = {}
        pending = iter(todo)
        in_flight: dict[Future, int] = {}
        pool = ThreadPoolExecutor(
            max_workers=min(self.max_active_requests, len(todo)), thread_name_prefix="azerion-generate"
        )
        try:
            while True:
                while not failures and len(in_flight) < self.max_active_requests:
                    index = next(pending, None)
                    if index is None:
                        break
                    in_flight[pool.submit(self._generate_one, hook, folder, index, prompts[index])] = index
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    index = in_flight.pop(future)
                    try:
                        stored, prompt_usage = future.result()
                    except Exception as err:
                        failures[index] = err
                    else:
                        results[index] = stored
                        usage = usage + prompt_usage
        except BaseException:
            # Killed or timed out: do not wait for requests whose results nobody will store.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        else:
            pool.shutdown(wait=True)  # returns at once: the loop only ends with nothing in flight
        finally:
            hook.close()
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
                len(todo) - stored_count - len(failures),
            )
            raise _for_prompt(failures[first], first, prompts[first])
        return usage

    def _generate_one(
        self, hook: AzerionHook, folder: OutputFolder, index: int, prompt: str
    ) -> tuple[list[StoredImage], Usage]:
        """Generate one prompt, check every image, then store them all (runs in a worker thread)."""
        import time

        from airflow_provider_azerion.exceptions import AzerionResponseError

        started = time.monotonic()
        response = hook.generate_images(
            prompt,
            model=self.model,
            response_format=self.response_format,
            style=self.style,
            **self._extra_api_params(),
        )
        if not response.images:  # the hook refuses an empty "data", but a prompt must never store nothing
            raise AzerionResponseError("the API returned no images")
        images = [
            (*self._image_bytes(hook, image_index, image), image.revised_prompt)
            for image_index, image in enumerate(response.images)
        ]
        common = {
            "prompt": prompt,
            "model": self.model,
            "style": self.style,
            "params": self.api_params(),
            "created": response.created.isoformat(),
            "usage": response.usage.to_dict(),
            "request_id": response.request_id,
        }
        stored = folder.store_prompt(index, images, common)
        elapsed = time.monotonic() - started
        for image in stored:
            self.log.info(
                "Prompt %d image %d: wrote %s (%d bytes, %.2f s)",
                index,
                image.metadata["image_index"],
                image.uri,
                image.metadata["bytes"],
                elapsed,
            )
        return stored, response.usage

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

    def _annotate_outlets(self, context: Context, uris: list[str]) -> None:
        """Put the produced URIs into the asset event of every asset in ``outlets``."""
        if not self.outlets:
            return
        from airflow.sdk import Asset
        from airflow.sdk.definitions.asset import AssetRef

        extra: dict[str, Any] = {"uris": uris, "count": len(uris)}
        for outlet in self.outlets:
            # An AssetAlias has no event of its own until a concrete asset is added to it.
            if isinstance(outlet, (Asset, AssetRef)):
                context["outlet_events"][outlet].extra.update(extra)

    # -- arguments -------------------------------------------------------------------------------

    def api_params(self) -> dict[str, Any]:
        """Everything sent to the API besides the prompt, as the hook sends it (``None`` omitted).

        Recorded in each sidecar; a stored prompt is reused only if these did not change.
        """
        params: dict[str, Any] = {"model": self.model, "response_format": self.response_format}
        if self.style is not None:
            params["style"] = self.style
        params.update(self._extra_api_params())
        return params

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
        from airflow_provider_azerion.hooks.azerion import validate_generation_args

        _check_max_active_requests(self.max_active_requests)
        if self.extra_params is not None and not isinstance(self.extra_params, dict):
            raise AzerionValidationError(
                f"extra_params must be a dict of API parameters, got {type(self.extra_params).__name__}"
            )
        for key in _RESERVED_EXTRA_PARAMS:
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

        # The hook's own rules, so the operator never drifts from what generate_images accepts:
        # first the arguments shared by all prompts (with a stand-in prompt), then each prompt.
        validate_generation_args(
            "-",
            model=self.model,
            response_format=self.response_format,
            style=self.style,
            **self._extra_api_params(),
        )
        for index, text in enumerate(prompts):
            try:
                validate_generation_args(text, model=self.model)
            except AzerionValidationError as err:
                raise AzerionValidationError(f"prompt {index}: {err}") from None
        return prompts


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
