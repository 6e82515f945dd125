"""Every bad input the hook and the operator reject: the exact error a user sees, and no request sent.

One table. Each row is a call that must fail locally, before a byte goes to the API (so nothing
is billed): the hook's arguments, settings and connection, ``download_image``'s URL, and the
operator's arguments, checked when the DAG is parsed or when the task runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_azerion.exceptions import (
    AzerionConfigurationError,
    AzerionStorageError,
    AzerionValidationError,
)
from airflow_provider_azerion.hooks.azerion import AzerionHook
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import execute
from tests.reliability.conftest import SECRET_KEY
from tests.reliability.helpers import SMALL

MODEL = "stable-image-core-1.1"
NO_KEY = (
    "No Azerion API key: connection {conn!r} {why} and neither AZERION_API_KEY nor AZERION_ACCESS_TOKEN "
    "is set. Put the key in the "
    "connection's password (API key) field or export AZERION_API_KEY."
)


@dataclasses.dataclass(frozen=True)
class Bad:
    """One rejected input.

    :param name: the test id.
    :param call: what is called: ``generate`` (the hook), ``hook`` (the constructor), ``download``,
        ``operator`` (built, then ``execute()``) or ``operator_init`` (the constructor).
    :param args: arguments of the call (for ``generate``, of ``generate_images`` besides the hook's
        own, which go in ``hook``).
    :param message: the exact error text; ``{output}`` stands for the output folder's URL.
    :param error: the exception type.
    :param hook: settings for the hook's constructor.
    :param connection: fields of connection ``azerion_default`` that replace the emulator's.
    """

    name: str
    call: str
    args: dict[str, Any]
    message: str
    error: type[Exception] = AzerionValidationError
    hook: dict[str, Any] = dataclasses.field(default_factory=dict)
    connection: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.name


def _op(name: str, message: str, error: type[Exception] = AzerionValidationError, **args: Any) -> Bad:
    return Bad(name, "operator", args, message, error)


def _gen(name: str, message: str, **args: Any) -> Bad:
    return Bad(name, "generate", args, message)


def _setting(name: str, message: str, **settings: Any) -> Bad:
    return Bad(name, "generate", {}, message, AzerionConfigurationError, hook=settings)


def _conn(name: str, message: str, **fields: Any) -> Bad:
    return Bad(name, "generate", {}, message, AzerionConfigurationError, connection=fields)


BAD_INPUTS = [
    # The hook's arguments.
    _gen("empty prompt", "prompt is empty; describe the image to generate", prompt=""),
    _gen("blank prompt", "prompt is empty; describe the image to generate", prompt="   "),
    _gen("long prompt", "prompt is 4001 characters; the Azerion API accepts at most 4000", prompt="x" * 4001),
    _gen("prompt not str", "prompt must be a str, got int", prompt=42),
    _gen("empty model", f"model must be a non-empty str, e.g. {MODEL!r}", model=""),
    _gen("model not str", f"model must be a non-empty str, e.g. {MODEL!r}", model=None),
    _gen(
        "response_format",
        "response_format must be one of ('b64_json', 'url'), got 'png'",
        response_format="png",
    ),
    _gen("n zero", "n must be an int from 1 to 10, got 0", n=0),
    _gen("n eleven", "n must be an int from 1 to 10, got 11", n=11),
    _gen("n bool", "n must be an int from 1 to 10, got True", n=True),
    _gen("n str", "n must be an int from 1 to 10, got '2'", n="2"),
    _gen("style not str", "style must be a str or None, got int", style=3),
    _gen(
        "param not JSON",
        "extra API parameters must be JSON-serialisable: Object of type object is not JSON serializable",
        seed=object(),
    ),
    # The hook's settings and connection.
    Bad(
        "unknown setting",
        "hook",
        {"read_timeuot": 5},
        "AzerionHook got unknown setting(s) ['read_timeuot']; known settings: ['backoff_factor', "
        "'connect_timeout', 'max_attempts', 'max_download_bytes', 'max_retry_wait', 'pool_maxsize', "
        "'read_timeout', 'retry_on_timeout']",
    ),
    _setting(
        "negative timeout",
        "Setting read_timeout=-1 of connection 'azerion_default' must be positive",
        read_timeout=-1,
    ),
    _setting(
        "zero attempts",
        "Setting max_attempts=0 of connection 'azerion_default' must be positive",
        max_attempts=0,
    ),
    _conn(
        "extra not a number",
        "Setting read_timeout='soon' of connection 'azerion_default' is not a valid float",
        extra={"read_timeout": "soon"},
    ),
    _conn(
        "host not http",
        "Connection 'azerion_default' host 'ftp://api.azerion.ai' is not an http(s) URL; use e.g. "
        "https://api.azerion.ai/v1",
        host="ftp://api.azerion.ai",
    ),
    _conn(
        "host without name",
        "Connection 'azerion_default' host 'https://' is not an http(s) URL; use e.g. https://api.azerion.ai/v1",
        host="https://",
    ),
    _conn("no password", NO_KEY.format(conn="azerion_default", why="has no password"), password=None),
    Bad(
        "no connection",
        "generate",
        {},
        NO_KEY.format(conn="az_missing", why="does not exist"),
        AzerionConfigurationError,
        hook={"conn_id": "az_missing"},
    ),
    Bad(
        "download not http",
        "download",
        {"url": "file:///etc/passwd"},
        "A result image URL must be an absolute http(s) URL; got one with scheme 'file'",
    ),
    # The operator's arguments, when the DAG is parsed...
    *(
        Bad(
            f"max_active_requests {value!r}",
            "operator_init",
            {"max_active_requests": value},
            f"max_active_requests must be an int >= 1, got {value!r}",
        )
        for value in (0, -1, True)
    ),
    # ... and when the task runs (templated values are only known then).
    _op(
        "templated max_active_requests",
        "max_active_requests must be an int >= 1, got '4'",
        max_active_requests="4",
    ),
    _op("no prompts", "prompt is an empty list; give at least one prompt", prompt=[]),
    _op("prompt int", "prompt must be a str or a list of str, got int", prompt=42),
    _op("prompt bytes", "prompt must be a str or a list of str, got bytes", prompt=b"a fox"),
    _op("prompt item int", "prompt 1: prompt must be a str, got int", prompt=["fine", 7]),
    _op(
        "prompt item blank",
        "prompt 1: prompt is empty; describe the image to generate",
        prompt=["fine", "   "],
    ),
    _op(
        "prompt too long",
        "prompt 0: prompt is 4001 characters; the Azerion API accepts at most 4000",
        prompt="x" * 4001,
    ),
    _op("operator model", f"model must be a non-empty str, e.g. {MODEL!r}", model=""),
    _op("operator n", "n must be an int from 1 to 10, got 11", n=11),
    _op(
        "n twice", "n is set both as an argument and in extra_params; set it once", n=2, extra_params={"n": 3}
    ),
    _op(
        "extra_params str",
        "extra_params must be a dict of API parameters, got str",
        extra_params="size=64x64",
    ),
    *(
        _op(
            f"extra_params {key}",
            f"extra_params must not set {key!r}; use the {key} argument instead",
            extra_params={key: "x"},
        )
        for key in ("prompt", "model", "response_format", "style")
    ),
    _op(
        "operator response_format",
        "response_format must be one of ('b64_json', 'url'), got 'png'",
        response_format="png",
    ),
    _op(
        "output_path empty",
        "output_path must be a non-empty URL or ObjectStoragePath, e.g. 'file:///data/images/' or "
        "'s3://bucket/images/'; got ''",
        output_path="",
    ),
    _op(
        "output_path None",
        "output_path must be a non-empty URL or ObjectStoragePath, e.g. 'file:///data/images/' or "
        "'s3://bucket/images/'; got None",
        output_path=None,
    ),
    _op(
        "output_path relative",
        "output_path 'relative/images' is relative; use an absolute path or a URL such as "
        "'file:///data/images/' so every worker writes to the same place",
        output_path="relative/images",
    ),
    _op(
        "output_path two slashes",
        "output_path 'file://relative/images' is not an absolute file URL; write it with three slashes, "
        "e.g. 'file:///data/images/'",
        output_path="file://relative/images",
    ),
    _op(
        "output_path unknown protocol",
        "output_path 'nosuchproto://bucket/images' uses an unsupported protocol: ",
        output_path="nosuchproto://bucket/images",
    ),
    _op(
        "output_path without filesystem",
        "output_path 'memory://bucket/images': no Airflow filesystem is registered for protocol 'memory'. "
        "Install the provider that supplies it (e.g. apache-airflow-providers-amazon[s3fs] for s3://, "
        "apache-airflow-providers-google for gs://).",
        output_path="memory://bucket/images",
    ),
    _op(
        "output_path under a file",
        "cannot list file://{output}/blocked/sub/direct/manual__2024-05-01T06_30_00_00_00/generate "
        "(Not a directory); nothing was generated. Point output_path at a folder or bucket this worker "
        "may write (check the path, its permissions for the worker's user, the bucket's name and the "
        "credentials of output_conn_id), then clear the task",
        AzerionStorageError,
        output_path="{output}/blocked/sub",
    ),
    Bad(
        "operator without key",
        "operator",
        {"prompt": "a fox"},
        "prompt 0 ('a fox'): " + NO_KEY.format(conn="azerion_default", why="has no password"),
        AzerionConfigurationError,
        connection={"password": None},
    ),
]


def _call(bad: Bad, output_dir: Path) -> Callable[[], Any]:
    if bad.call == "generate":
        args = {"model": MODEL, **bad.args}
        prompt = args.pop("prompt", "a cat")
        return lambda: AzerionHook(**bad.hook).generate_images(prompt, **args)
    if bad.call == "hook":
        return lambda: AzerionHook(**bad.args)
    if bad.call == "download":
        return lambda: AzerionHook().download_image(bad.args["url"])
    args = {
        "task_id": "generate",
        "prompt": "a fox",
        "output_path": output_dir.as_uri(),
        "extra_params": SMALL,
    }
    args.update(bad.args)
    if isinstance(args["output_path"], str):
        args["output_path"] = args["output_path"].format(output=output_dir)
    if bad.call == "operator_init":
        return lambda: ImageGenerationOperator(**args)
    return lambda: execute(ImageGenerationOperator(**args))


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=str)
def test_bad_input_is_rejected_with_a_clear_message_before_any_request(
    emulator, monkeypatch, output_dir, bad
):
    (output_dir / "blocked").write_text("a file where a folder should be")
    if bad.connection is not None:
        fields = {"conn_type": "azerion", "host": emulator.base_url, "password": SECRET_KEY, **bad.connection}
        monkeypatch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", json.dumps(fields))

    with pytest.raises(bad.error) as caught:
        _call(bad, output_dir)()

    expected = bad.message.format(output=output_dir)
    if expected.endswith(": "):  # the rest comes from a third-party library
        assert str(caught.value).startswith(expected)
    else:
        assert str(caught.value) == expected
    assert emulator.requests == [], "nothing may be sent for an input rejected locally"
