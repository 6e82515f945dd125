"""The folder layout: names built and parsed in one place, temporary names unique across hosts."""

from __future__ import annotations

import subprocess
import sys

from airflow_provider_azerion.layout import (
    FileKey,
    image_name,
    is_temp_name,
    parse_name,
    sidecar_name,
    sidecar_of,
    task_segments,
    temp_name,
)

# Two containers on two hosts both run their worker as pid 1: the pid alone tells them apart no more.
_AS_PID_1 = """
import os
os.getpid = lambda: 1
from airflow_provider_azerion.layout import temp_name
print(temp_name("0000-0.png"), temp_name("0000-0.png"))
"""


def test_temporary_names_differ_between_processes_with_the_same_pid():
    names = [
        subprocess.run(
            [sys.executable, "-c", _AS_PID_1], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]

    assert len({*names[0], *names[1]}) == 4
    assert all(is_temp_name(name) for name in names[0] + names[1])


def test_temporary_names_are_hidden_and_recognised():
    name = temp_name("0001-0.webp")
    assert name.startswith(".0001-0.webp.")
    assert is_temp_name(name)
    assert parse_name(name) is None


def test_names_round_trip_through_the_parser():
    assert parse_name(image_name(12, 3, "webp")) == FileKey(12, 3, False)
    assert parse_name(sidecar_name(12, 3)) == FileKey(12, 3, True)
    assert sidecar_of(image_name(12, 3, "png")) == sidecar_name(12, 3)
    assert parse_name("manifest.jsonl") is None
    assert parse_name("0001-0.exe") is None


def test_task_segments_are_safe_on_every_store():
    assert task_segments("dag", "manual__2024-05-01T06:30:00+00:00", "gen", 4) == (
        "dag",
        "manual__2024-05-01T06_30_00_00_00",
        "gen-4",
    )
    assert task_segments("..", ".hidden", "t", -1) == ("__", "_hidden", "t")
