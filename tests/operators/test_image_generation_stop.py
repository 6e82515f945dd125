"""A task that times out or is killed mid-generation stops within seconds and loses nothing stored."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from airflow_provider_azerion.batch import PromptBatch
from airflow_provider_azerion.exceptions import AzerionCancelledError
from airflow_provider_azerion.folder import OutputFolder, TaskIdentity
from airflow_provider_azerion.hooks.azerion import AzerionHook
from airflow_provider_azerion.models import GenerationPlan, ImageGenerationRequest
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import DAG_FILE, execute, leftovers, run_conf, sidecar, task_folder


def _stored_prompts(folder):
    """Prompts of the images stored in ``folder``, each checked against its complete sidecar."""
    prompts = set()
    for image in folder.glob("*.jpg"):
        metadata = sidecar(folder, int(image.name[:4]))
        assert metadata["bytes"] == image.stat().st_size
        prompts.add(metadata["prompt"])
    return prompts


def _answered_prompts(emulator):
    """Prompts whose generation the emulator answered (the fault script decides which, by arrival)."""
    return {r.prompt for r in emulator.requests_to("/images/generations") if r.status == 200 and not r.fault}


def test_execution_timeout_ends_the_task_within_seconds_with_what_was_stored(run_dag, emulator, output_dir):
    # Prompts 1 and 3 would take 60 s each; read_timeout is 300 s and the hook would wait for them.
    emulator.faults.script(["ok", "slow:60", "ok", "slow:60"])
    prompts = [f"timeout prompt {i}" for i in range(4)]
    started = time.monotonic()
    result = run_dag(DAG_FILE, "azerion_images_timeout", conf=run_conf(output_dir, prompts))
    elapsed = time.monotonic() - started

    assert result.state == "failed"
    assert elapsed < 30  # execution_timeout is 3 s: not read_timeout, not 60 s
    folder = task_folder(output_dir, "azerion_images_timeout", result.run_id)
    answered = _answered_prompts(emulator)
    assert len(answered) == 2
    assert _stored_prompts(folder) == answered  # every answered (paid) prompt was stored
    assert leftovers(output_dir) == []
    assert emulator.generation_count == 4  # nothing was sent after the timeout


@pytest.mark.parametrize("concurrency", [1, 2])  # 1 runs in the task's own thread, 2 in workers
def test_on_kill_cancels_generations_in_flight_and_stores_what_arrived(emulator, output_dir, concurrency):
    emulator.faults.script(["ok", *["slow:60"] * concurrency])
    operator = ImageGenerationOperator(
        task_id="generate",
        prompt=["kill prompt 0", "kill prompt 1", "kill prompt 2", "kill prompt 3"],
        output_path=output_dir.as_uri() + "/",
        extra_params={"size": "64x64"},
        max_active_requests=concurrency,
    )
    errors: list[BaseException] = []

    def run():
        try:
            execute(operator)
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    deadline = time.monotonic() + 20
    # The kill comes once the slow ones hang and the fast one's answer is stored: under load, the
    # fast request may otherwise still be in flight (and be cancelled) when the slow ones arrive.
    while (emulator.in_flight < concurrency or not _stored_prompts(folder)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.in_flight == concurrency
    killed = time.monotonic()
    operator.on_kill()
    worker.join(20)

    assert not worker.is_alive()
    assert time.monotonic() - killed < 10
    assert isinstance(errors[0], AzerionCancelledError)
    answered = _answered_prompts(emulator)
    assert len(answered) == 1
    assert _stored_prompts(folder) == answered
    assert leftovers(output_dir) == []
    assert emulator.generation_count == 1 + concurrency  # nothing started after the kill


def test_on_kill_before_or_after_execute_is_harmless(emulator, output_dir):
    operator = ImageGenerationOperator(
        task_id="generate",
        prompt="a cat",
        output_path=output_dir.as_uri() + "/",
        extra_params={"size": "64x64"},
    )
    operator.on_kill()
    execute(operator)
    operator.on_kill()
    assert emulator.generation_count == 1


class _KillWhileStoringTheLast(PromptBatch):
    """A batch whose ``on_kill`` arrives while the last prompt is being stored."""

    def _store(self, index, generated):
        super()._store(index, generated)
        if len(self.stored) == len(self.todo):  # the last prompt to be stored, whichever it is
            self.cancel()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_kill_while_the_last_prompt_is_stored_keeps_the_complete_run(emulator, output_dir, concurrency):
    from airflow.sdk import ObjectStoragePath

    prompts = [f"last prompt {i}" for i in range(3)]
    request = ImageGenerationRequest.of("stable-image-core-1.1", size="64x64")
    folder = OutputFolder(ObjectStoragePath(output_dir.as_uri()), TaskIdentity("d", "r", "generate"))
    folder.open()
    batch = _KillWhileStoringTheLast(
        AzerionHook(),
        GenerationPlan.of(prompts, request),
        folder,
        {},
        max_active_requests=concurrency,
        log=logging.getLogger(__name__),
    )

    batch.run()  # nothing failed and nothing was left to start: no error (was an IndexError)

    assert sorted(batch.stored) == [0, 1, 2]
    assert emulator.generation_count == 3


def test_a_write_failing_while_a_timeout_stops_the_task_neither_hides_the_timeout_nor_is_listed(
    emulator, output_dir
):
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import TimeoutPosix

    emulator.faults.script(["ok", "ok", "slow:60"])  # prompt 2 hangs until the timeout
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    (folder / "0001-0.jpg").mkdir(parents=True)  # prompt 1's image cannot be renamed into place
    operator = ImageGenerationOperator(
        task_id="generate",
        prompt=["timeout write 0", "timeout write 1", "timeout write 2"],
        output_path=output_dir.as_uri() + "/",
        extra_params={"size": "64x64"},
        max_active_requests=1,
    )

    with pytest.raises(AirflowTaskTimeout), TimeoutPosix(3, "test timeout"):
        execute(operator)

    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [entry["prompt_index"] for entry in manifest] == [0]  # prompt 1 was lost, prompt 2 never came
    assert leftovers(output_dir) == []
    deadline = time.monotonic() + 5
    while any(t.name == "azerion-commit" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "azerion-commit" for t in threading.enumerate()), "the committer was closed"
