"""A thousand images in one DAG run while one request in ten fails: all delivered, once each.

One task generates 1 000 prompts, 8 at a time. The emulator follows a seeded script in which
10 % of the first requests fail: mostly statuses the hook retries (503, 500, 502, 504, and 429 with
a short Retry-After), plus a few failures the hook must not retry (a dropped connection, whose
generation may have been billed) or cannot (a 200 with unusable data), each of which fails the
try; the task's retries then resume without regenerating what is stored.
"""

from __future__ import annotations

import collections
import json
import random
import time

import pytest

from tests.operators.helpers import task_folder
from tests.reliability.helpers import DAG_FILE, assert_outputs_sound, generation_prompts, run_conf

IMAGES = 1000
SEED = 20240501
HOOK_RETRIED = ["503", "500", "502", "504", "429"]
#: Each fails one try of the task; the DAG allows 8 retries.
TASK_RETRIED = ["drop", "invalid_base64", "truncated_json", "empty_data"]


def fault_script(requests: int, rate: float, seed: int) -> list[str]:
    """``requests`` fault kinds: ``rate`` of them faults, each task-level kind exactly once."""
    rng = random.Random(seed)
    script = ["ok"] * requests
    positions = rng.sample(range(requests), round(requests * rate))
    kinds = TASK_RETRIED + [rng.choice(HOOK_RETRIED) for _ in range(len(positions) - len(TASK_RETRIED))]
    rng.shuffle(kinds)
    for position, kind in zip(positions, kinds, strict=True):
        script[position] = kind
    return script


@pytest.mark.timeout(240)
def test_a_thousand_images_under_ten_percent_faults_are_all_delivered_once(
    run_dag, emulator, connect, output_dir
):
    prompts = [f"load prompt {i:04d}" for i in range(IMAGES)]
    # Five attempts per call: a prompt meeting five status faults in a row is a 1-in-100 000 event.
    connect(emulator.base_url, max_attempts=5, backoff_factor=0.01, max_retry_wait=0.05)
    emulator.retry_after = 0.01
    script = fault_script(int(IMAGES * 1.1), rate=0.1, seed=SEED)
    emulator.faults.script(script)

    started = time.monotonic()
    result = run_dag(DAG_FILE, "azerion_reliability_load", conf=run_conf(output_dir, prompts, size="16x16"))
    elapsed = time.monotonic() - started

    assert result.state == "success"
    xcom = result.xcom("generate")
    assert xcom["count"] == IMAGES
    assert len(result.xcom_raw("generate")) <= 64 * 1024, "the XCom stays small at any batch size"
    sidecars = assert_outputs_sound(output_dir)
    folder = task_folder(output_dir, "azerion_reliability_load", result.run_id)
    assert len(sidecars) == IMAGES
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [name for i in range(IMAGES) for name in (f"{i:04d}-0.jpg", f"{i:04d}-0.json")] + ["manifest.jsonl"]
    )
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [entry["prompt"] for entry in manifest] == prompts, "every prompt delivered once, in order"
    assert {metadata["prompt"] for metadata in sidecars.values()} == set(prompts)

    sent = generation_prompts(emulator)
    records = emulator.requests_to("/images/generations")
    clean = collections.Counter(r.prompt for r in records if r.status == 200 and not r.fault)
    assert set(clean) == set(prompts)
    assert set(clean.values()) == {1}, "no prompt was generated successfully twice"
    faults = collections.Counter(r.fault for r in records if r.fault)
    assert sum(faults.values()) >= 0.09 * len(sent)
    tries = result.ti("generate").try_number
    assert 2 <= tries <= 1 + len(TASK_RETRIED), "each task-level fault costs at most one try"
    print(
        f"\n{IMAGES} images, {len(sent)} requests, {sum(faults.values())} faults {dict(faults)}, "
        f"{tries} tries, {elapsed:.1f} s"
    )
