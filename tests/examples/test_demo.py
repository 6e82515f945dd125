"""``scripts/demo.py`` (what ``make demo`` runs): the whole job in one command, offline."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "scripts" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    """The demo script as a module, for its helpers."""
    spec = importlib.util.spec_from_file_location("azerion_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_generates_and_checks_the_daily_images_against_the_emulator(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AZERION_"))}
    output_dir, home = tmp_path / "images", tmp_path / "airflow"

    done = subprocess.run(
        [
            *(sys.executable, str(DEMO), "--date", "2025-06-01", "--timeout", "200"),
            *("--output-dir", str(output_dir), "--airflow-home", str(home)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,  # under the suite's 300 s per test
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "using the local Azerion emulator" in out
    assert "All 4 image(s) decode and match the sha256 in their JSON sidecars." in out
    images = sorted(output_dir.rglob("*.jpg"))
    assert len(images) == 4
    for image in images:
        # Each image is listed with its size, dimensions and format (max_side 512, 16:9).
        assert re.search(re.escape(str(image)) + r"\s+[\d,]+ bytes\s+512x\d+ JPEG", out), out
    assert "2025-06-01" in out, "prompts are dated with the run's ds"
    assert (home / "airflow.db").exists()
    assert (home / "dags-test.log").exists()


def test_a_failing_step_raises_with_the_end_of_its_log(demo, tmp_path):
    failing = [sys.executable, "-c", "print('step output'); raise SystemExit(3)"]

    with pytest.raises(demo.DemoError, match=r"exited with 3(.|\n)*step output"):
        demo.run_step(failing, {}, tmp_path / "step.log", timeout=60, secrets=[])


def test_a_step_over_its_deadline_is_stopped(demo, tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]

    with pytest.raises(demo.DemoError, match="did not finish within 1 s"):
        demo.run_step(sleeper, {}, tmp_path / "step.log", timeout=1, secrets=[])


def test_secrets_never_reach_the_step_log(demo, tmp_path):
    leaky = [sys.executable, "-c", "print('key is sk-demo-123')"]

    demo.run_step(leaky, {}, tmp_path / "step.log", timeout=60, secrets=["sk-demo-123"])

    assert (tmp_path / "step.log").read_text() == "key is ***\n"


def test_the_demo_never_deletes_a_folder_it_did_not_create(demo, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")

    with pytest.raises(demo.DemoError, match="not made by the demo"):
        demo.recreate(precious)
    assert (precious / "thesis.txt").read_text() == "keep me"

    scratch = tmp_path / "scratch"
    demo.recreate(scratch)
    (scratch / "old.jpg").write_bytes(b"old")
    demo.recreate(scratch)
    assert sorted(p.name for p in scratch.iterdir()) == [demo.MARKER]
