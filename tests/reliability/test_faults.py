"""Every way the API can fail, under ``dag.test()``: the task recovers or fails clearly, never half-written.

The DAG generates three prompts one at a time with two task retries. The fault hits prompt 1
(prompt 0 is stored first), either once, which must end in success (through the hook's retries
for status codes, through a task retry that resumes for the rest), or on every request, which
must fail the task after its retries with a message naming the prompt and the cause. Either way
the output folder holds only complete images, each vouched for by its sidecar.

The emulator cannot cut a generation body short, so the last test uses a small server of its
own: a response that breaks off after its headers is a connection error, and is not resent.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from typing import Any

import pytest

from airflow_provider_azerion.exceptions import AzerionConnectionError, AzerionResponseError
from airflow_provider_azerion.hooks.azerion import AzerionHook
from tests.operators.helpers import task_folder
from tests.reliability.helpers import DAG_FILE, assert_outputs_sound, generation_prompts, run_conf

PROMPTS = [f"reliability prompt {i}" for i in range(3)]
PREFIX = f"prompt 1 ('{PROMPTS[1]}'): "
SERVER_HINT = "The Azerion API failed on its side after the hook's retries; task retries may succeed later"
NOT_RESENT = "The server may have generated and billed the image already, so the hook did not resend it."


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault kind and what a user sees when it persists.

    :param kind: the emulator's fault kind.
    :param message: what follows the prompt in the task's error (``{base_url}`` is filled in).
    :param hint: a further part of the error, after the request id.
    :param hook_retries: the hook retries it within one try; otherwise a task retry resumes.
    :param extra: connection settings for the test.
    """

    kind: str
    message: str
    hint: str = ""
    hook_retries: bool = False
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return self.kind


FAULTS = [
    Fault(
        "429",
        "Azerion API 429 rate_limit_exceeded: Rate limit exceeded. Please retry after a short wait.",
        "The server asked to wait 0.05 s",
        hook_retries=True,
    ),
    Fault(
        "500",
        "Azerion API 500 internal_server_error: The server had an error while processing your request.",
        SERVER_HINT,
        hook_retries=True,
    ),
    Fault(
        "502",
        "Azerion API 502 bad_gateway: Bad gateway: the upstream model provider returned an invalid response.",
        SERVER_HINT,
        hook_retries=True,
    ),
    Fault(
        "html502",
        "Azerion API 502 error: Bad Gateway (non-JSON body: '502 Bad Gateway 502 Bad Gateway nginx')",
        SERVER_HINT,
        hook_retries=True,
    ),
    Fault(
        "503",
        "Azerion API 503 service_unavailable: "
        "The service is temporarily unavailable. Please try again later.",
        SERVER_HINT,
        hook_retries=True,
    ),
    Fault(
        "504",
        "Azerion API 504 gateway_timeout: "
        "Gateway timeout: the upstream model provider did not answer in time.",
        SERVER_HINT,
        hook_retries=True,
    ),
    Fault(
        "drop",
        "Azerion API POST /images/generations: connection dropped (",
        NOT_RESENT,
    ),
    Fault(
        "slow:1.5",
        "Azerion API POST /images/generations: no response within 0.5 s. " + NOT_RESENT,
        extra={"read_timeout": 0.5},
    ),
    Fault(
        "truncated_json",
        "Azerion API answered POST /images/generations with HTTP 200 but a body that is not valid JSON",
        "possibly truncated",
    ),
    Fault("invalid_base64", "image 0: b64_json is not valid base64 ("),
    Fault(
        "not_image",
        "image 0: the 110 bytes received are not a PNG, JPEG, WebP or GIF image (they start with b'hello",
    ),
    Fault("empty_data", "Azerion API returned no images (empty 'data')", "the task's retries may succeed"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_fault_once_is_recovered_and_leaves_only_whole_files(run_dag, emulator, connect, output_dir, fault):
    connect(emulator.base_url, **fault.extra)
    emulator.faults.script(["ok", fault.kind])

    result = run_dag(DAG_FILE, "azerion_reliability", conf=run_conf(output_dir, PROMPTS))

    assert result.state == "success"
    assert result.ti("generate").try_number == (1 if fault.hook_retries else 2)
    folder = task_folder(output_dir, "azerion_reliability", result.run_id)
    sidecars = assert_outputs_sound(output_dir)
    assert sorted(sidecars) == [str((folder / f"{i:04d}-0.json").relative_to(output_dir)) for i in range(3)]
    assert [entry["prompt"] for entry in result.xcom("generate")["images"]] == PROMPTS
    sent = generation_prompts(emulator)
    assert sent == [PROMPTS[0], PROMPTS[1], PROMPTS[1], PROMPTS[2]], "only the failed request is repeated"


def test_the_hook_waits_as_long_as_retry_after_says(run_dag, emulator, connect, output_dir):
    emulator.retry_after = 0.4
    connect(emulator.base_url, max_retry_wait=5)
    emulator.faults.script(["429"])

    result = run_dag(DAG_FILE, "azerion_reliability", conf=run_conf(output_dir, PROMPTS[:1]))

    assert result.state == "success"
    refused, accepted = emulator.requests_to("/images/generations")
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.started - refused.finished >= 0.35


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_fault_every_time_fails_the_task_clearly_and_leaves_only_whole_files(
    run_dag, emulator, connect, output_dir, capfd, fault
):
    connect(emulator.base_url, **fault.extra)
    emulator.faults.script(["ok"])
    emulator.faults.set_rate(1.0, kinds=[fault.kind])

    result = run_dag(DAG_FILE, "azerion_reliability", conf=run_conf(output_dir, PROMPTS))

    assert result.state == "failed"
    ti = result.ti("generate")
    assert (str(ti.state), ti.try_number) == ("failed", 3)
    logs = "".join(capfd.readouterr())
    assert PREFIX + fault.message.format(base_url=emulator.base_url) in logs
    assert fault.hint in logs
    folder = task_folder(output_dir, "azerion_reliability", result.run_id)
    assert list(assert_outputs_sound(output_dir)) == [str((folder / "0000-0.json").relative_to(output_dir))]
    attempts_per_try = 3 if fault.hook_retries else 1  # max_attempts in the connection's extra
    sent = generation_prompts(emulator)
    assert sent == [PROMPTS[0]] + [PROMPTS[1]] * 3 * attempts_per_try, "prompt 2 never starts"


@pytest.fixture
def half_body_server():
    """A loopback server that answers every request with headers and half the promised JSON body."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # lets the loop notice the stop flag
    stop = threading.Event()
    requests_seen: list[bytes] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(65536)
                requests_seen.append(head.split(b"\r\n", 1)[0])
                body = b'{"created": 1, "data": [{"b64_json": "' + b"A" * 1000
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests_seen
    stop.set()
    thread.join(5)
    listener.close()


def test_a_generation_body_that_breaks_off_is_reported_and_not_resent(connect, half_body_server):
    url, requests_seen = half_body_server
    connect(url)

    with pytest.raises(AzerionConnectionError) as caught:
        AzerionHook().generate_images("a cat", model="stable-image-core-1.1")

    # Whether the kernel reports the server's close as an IncompleteRead or a reset is its business:
    # what matters is the class, that the request may have been billed, and that it went out once.
    assert not isinstance(caught.value, AzerionResponseError)
    assert "billed" in str(caught.value)
    assert caught.value.request_sent is True
    assert requests_seen == [b"POST /v1/images/generations HTTP/1.1"], (
        "a POST that may be billed is not resent"
    )
