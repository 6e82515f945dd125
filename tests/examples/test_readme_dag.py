"""The README's ten-line DAG, as written, on a manual run (no logical date) against the emulator."""

from __future__ import annotations

import re

import pytest

from tests.conftest import DAG_BUNDLES, REPO_ROOT

README_OUTPUT = "file:///tmp/azerion-images/"

pytestmark = pytest.mark.azerion_emulator(max_side=64)


def readme_dag_source() -> str:
    """The first Python block after the README's "A DAG in ten lines" heading."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## A DAG in ten lines", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_dag_runs_when_triggered_without_a_logical_date(run_dag, emulator, tmp_path):
    source = readme_dag_source()
    assert README_OUTPUT in source
    output = tmp_path / "images"
    dag_file = DAG_BUNDLES["scratch-dags"] / "azerion_readme_hello.py"
    dag_file.write_text(source.replace(README_OUTPUT, output.as_uri() + "/"))

    result = run_dag(dag_file, "azerion_hello", manual=True)

    assert result.state == "success"
    assert result.dag_run.logical_date is None
    prompts = [record.prompt for record in emulator.requests_to("/images/generations")]
    day = result.dag_run.run_after.strftime("%Y-%m-%d")
    assert sorted(prompts) == sorted([f"a lighthouse at dusk, poster for {day}", "a red fox in fresh snow"])
    assert len(list(output.rglob("*.jpg"))) == 2
