"""The benchmarks keep working: each runs on a tiny size, and the command writes its results file.

No timing ratio is asserted (they are noisy and measured by ``make bench``); only that every
benchmark ran and produced numbers that can be true.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys

import pytest

from benchmarks import BENCHMARKS
from benchmarks.harness import REPO_ROOT


def _sane(name: str, result) -> None:
    figures = result.figures
    if name == "p1":
        assert all(t > 0 for times in figures["seconds"].values() for t in times)
    elif name == "p2":
        assert result.value >= 1.0, "no run can beat the emulator's own latency"
    elif name == "p3":
        assert figures["image_mib"] > 0
        assert figures["baseline_rss_mib"] > 0
    elif name == "p4":
        assert 0 < figures["operator_import_median_ms"] < figures["sdk_import_median_ms"]
    elif name == "p5":
        assert figures["delivered"] == figures["images"]
        assert result.value >= 1.0, "every image needs at least one request"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_each_benchmark_runs_on_a_tiny_size(name):
    module = importlib.import_module(BENCHMARKS[name].module)

    result = module.run(**module.QUICK)

    assert result.key == name
    assert math.isfinite(result.value)
    assert result.value >= 0
    assert result.summary().endswith(("PASS", "MISS"))
    json.dumps(result.to_dict())
    _sane(name, result)


@pytest.mark.timeout(180)
def test_the_command_prints_the_verdict_and_merges_results(tmp_path):
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"results": {"p4": {"kept": True}}}))

    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "p5", "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "p5 retry efficiency: requests per image: " in completed.stdout
    assert completed.stdout.count("PASS") + completed.stdout.count("MISS") == 1
    results = json.loads(output.read_text())["results"]
    assert results["p4"] == {"kept": True}, "benchmarks not run keep their earlier entry"
    assert results["p5"]["quick"] is True
    assert results["p5"]["machine"]["nproc"] >= 1
    assert (tmp_path / "benchmarks.log").stat().st_size > 0, "task logs go to a file, as in a task"
