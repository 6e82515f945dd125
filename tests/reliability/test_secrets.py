"""The API key and image data stay out of everything a run leaves behind, successful or not.

Real DAG runs (a success, persistent server errors, a bad request, a rejected key) and the same
failures raised by ``execute()`` and the hook directly; then every place a key could surface is
searched: the task logs ``dag.test()`` writes (to the console, captured here; it writes no log
files, but ``AIRFLOW_HOME`` is searched too), XCom values and rendered template fields in the
metadata DB (and the DB's raw bytes), sidecars, and exception texts, tracebacks and pickles.
"""

from __future__ import annotations

import base64
import pickle
import re
import traceback
from pathlib import Path

import pytest
from airflow.models.renderedtifields import RenderedTaskInstanceFields
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select

from airflow_provider_azerion.hooks.azerion import AzerionHook
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.conftest import AIRFLOW_HOME
from tests.operators.helpers import execute, task_folder
from tests.reliability.conftest import SECRET_KEY
from tests.reliability.helpers import DAG_FILE, SMALL, run_conf

DAG_ID = "azerion_reliability"
BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{120,}")


def _error_texts(call) -> list[str]:
    """Every form of the exception ``call`` raises: str, repr, traceback, pickle."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any error: its texts are what matter
        call()
    error = caught.value
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        pickle.dumps(error).decode("latin-1"),
    ]


def _db_rows(run_ids: list[str]) -> tuple[list[str], list[str]]:
    """Raw XCom values and rendered template fields of the runs, as stored."""
    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel.value).where(XComModel.dag_id == DAG_ID, XComModel.run_id.in_(run_ids))
        )
        xcom_values = [value if isinstance(value, str) else repr(value) for value in xcoms]
        fields = session.scalars(
            select(RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == DAG_ID, RenderedTaskInstanceFields.run_id.in_(run_ids)
            )
        )
        rendered = [repr(value) for value in fields]
    return xcom_values, rendered


def _files_under(root: Path, pattern: str = "*") -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in sorted(root.rglob(pattern)) if p.is_file())


def test_the_key_and_image_data_appear_nowhere(run_dag, emulator, output_dir, capfd):
    runs = {"success": run_dag(DAG_FILE, DAG_ID, conf=run_conf(output_dir / "success", ["a leak check"]))}
    emulator.faults.set_rate(1.0, kinds=["503"])
    runs["server_errors"] = run_dag(DAG_FILE, DAG_ID, conf=run_conf(output_dir / "server", ["a leak check"]))
    emulator.faults.clear()
    runs["bad_request"] = run_dag(DAG_FILE, DAG_ID, conf=run_conf(output_dir / "bad", ["x"], size="8x8"))
    emulator.api_key = "sk-azerion-the-server-wants-another-key"
    runs["rejected_key"] = run_dag(DAG_FILE, DAG_ID, conf=run_conf(output_dir / "auth", ["a leak check"]))
    logs = "".join(capfd.readouterr())

    errors = _error_texts(
        lambda: AzerionHook().generate_images("a leak check", model="stable-image-core-1.1")
    )
    errors.append(AzerionHook().test_connection()[1])
    op = ImageGenerationOperator(task_id="generate", prompt="a leak check", output_path=output_dir.as_uri())
    errors += _error_texts(lambda: execute(op))
    emulator.api_key = SECRET_KEY
    op = ImageGenerationOperator(
        task_id="generate", prompt="x", output_path=output_dir.as_uri(), extra_params={"size": "8x8"}
    )
    errors += _error_texts(lambda: execute(op))
    emulator.faults.set_rate(1.0, kinds=["503"])
    op = ImageGenerationOperator(
        task_id="generate", prompt="x", output_path=output_dir.as_uri(), extra_params=SMALL
    )
    errors += _error_texts(lambda: execute(op))

    states = {name: result.state for name, result in runs.items()}
    assert states == {
        "success": "success",
        "server_errors": "failed",
        "bad_request": "failed",
        "rejected_key": "failed",
    }
    # The failures did reach the logs and errors: the search below looks at real content.
    assert "Azerion API 401 invalid_api_key" in logs
    assert "Azerion API 503 service_unavailable" in logs
    assert "Azerion API 400" in logs
    assert any("Azerion API 401" in text for text in errors)
    xcoms, rendered = _db_rows([result.run_id for result in runs.values()])
    assert any("a leak check" in value for value in xcoms)
    assert len(rendered) == len(runs)
    assert all("a leak check" in value or "'x'" in value for value in rendered)
    image = next(task_folder(output_dir / "success", DAG_ID, runs["success"].run_id).glob("0000-0.*"))
    encoded = base64.b64encode(image.read_bytes()).decode()
    image_data = [encoded[:40], encoded[len(encoded) // 2 : len(encoded) // 2 + 40]]

    places = {
        "task logs": logs,
        "XCom": "\n".join(xcoms),
        "rendered template fields": "\n".join(rendered),
        "sidecars": _files_under(output_dir, "*.json"),
        "exception texts": "\n".join(errors),
        "AIRFLOW_HOME (DB, logs)": _files_under(AIRFLOW_HOME),
    }
    assert SECRET_KEY not in _files_under(output_dir), "the API key leaked into the output folder"
    assert runs["success"].run_id in places["AIRFLOW_HOME (DB, logs)"]  # the DB's bytes were read
    for place, text in places.items():
        assert SECRET_KEY not in text, f"the API key leaked into {place}"
        assert not any(data in text for data in image_data), f"image base64 leaked into {place}"
    for place in ("task logs", "XCom", "rendered template fields", "sidecars", "exception texts"):
        assert not BASE64_RUN.search(places[place]), f"a base64 run in {place}"
