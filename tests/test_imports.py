"""What a DAG file pays for importing the provider: no emulator, no web server, no HTTP stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["airflow_provider_azerion.emulator", "fastapi", "uvicorn", "PIL", "requests"]


@pytest.mark.parametrize(
    "module",
    ["airflow_provider_azerion.operators.image_generation", "airflow_provider_azerion.hooks.azerion"],
)
def test_importing_provider_modules_loads_no_emulator_or_web_server(module):
    code = (
        "import json, sys; import airflow.sdk; before = set(sys.modules); "
        f"import {module}; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules and m not in before]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert [m for m in loaded if m != "requests"] == []
    if module.endswith("image_generation"):
        assert "requests" not in loaded


@pytest.mark.parametrize(
    "module",
    ["airflow_provider_azerion.operators.image_generation", "airflow_provider_azerion.decorators"],
)
def test_a_dag_files_import_builds_no_request_model_or_storage_code(module):
    # models.py alone costs ~13 ms of dataclass building: execute() imports it, a DAG file need not.
    deferred = [
        "airflow_provider_azerion.models",
        "airflow_provider_azerion.batch",
        "airflow_provider_azerion.folder",
    ]
    code = (
        "import json, sys; import airflow.sdk; before = set(sys.modules); "
        f"import {module}; "
        f"print(json.dumps([m for m in {deferred!r} if m in sys.modules and m not in before]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
