"""``@task.azerion_images`` in real Airflow runs (``dag.test()``), against the emulator over HTTP.

The DAGs live in ``tests/decorators/dags/azerion_decorator.py``; each test passes its output
folder (and what a function should return) through the run's ``conf``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.decorators import azerion_images_task
from airflow_provider_azerion.exceptions import AzerionValidationError
from tests.decorators.conftest import SECRET_KEY

pytestmark = pytest.mark.azerion_emulator(max_side=64)

LOGICAL_DATE = datetime.datetime(2024, 5, 1, 6, 30, tzinfo=datetime.timezone.utc)
XCOM_KEYS = {"folder_uri", "manifest_uri", "count", "chunks", "images"}


def conf(output_dir: Path, **params) -> dict:
    return {"output_path": output_dir.as_uri() + "/", **params}


def decorated_operator(function, output_dir: Path, **kwargs):
    """The operator ``@azerion_images_task(...)`` makes of ``function``, in a throwaway DAG."""
    from airflow.sdk import DAG

    kwargs.setdefault("task_id", "generate")
    with DAG("azerion_decorator_direct", schedule=None, start_date=LOGICAL_DATE):
        xcom_arg = azerion_images_task(output_path=output_dir.as_uri(), **kwargs)(function)()
    return xcom_arg.operator  # type: ignore[attr-defined]


def run_folder(output_dir: Path, dag_id: str) -> Path:
    """The one run folder under ``{output}/{dag_id}/``."""
    (folder,) = (output_dir / dag_id).iterdir()
    return folder


def sidecar(folder: Path, prompt_index: int) -> dict:
    return json.loads((folder / f"{prompt_index:04d}-0.json").read_text())


def requested(emulator) -> list[str]:
    return [record.prompt for record in emulator.requests_to("/images/generations")]


def test_a_str_prompt_stores_one_image_and_returns_the_operators_xcom(
    run_dag, decorator_dags, emulator, output_dir
):
    result = run_dag(decorator_dags, "azerion_decorator_str", conf=conf(output_dir))

    assert result.state == "success"
    folder = run_folder(output_dir, "azerion_decorator_str") / "generate"
    assert sorted(p.name for p in folder.iterdir()) == ["0000-0.jpg", "0000-0.json", "manifest.jsonl"]
    assert requested(emulator) == ["a watercolour of a red fox in fresh snow"]
    xcom = result.xcom("generate")
    assert set(xcom) == XCOM_KEYS
    assert xcom["folder_uri"].rstrip("/") == folder.as_uri()
    assert xcom["count"] == 1
    (image,) = xcom["images"]
    assert image["uri"] == (folder / "0000-0.jpg").as_uri()
    assert image["prompt"] == sidecar(folder, 0)["prompt"] == "a watercolour of a red fox in fresh snow"
    assert image["sha256"] == sidecar(folder, 0)["sha256"]
    assert SECRET_KEY not in result.xcom_raw("generate")


def test_a_list_of_prompts_stores_each_prompt(run_dag, decorator_dags, emulator, output_dir):
    result = run_dag(decorator_dags, "azerion_decorator_list", conf=conf(output_dir))

    assert result.state == "success"
    prompts = [
        "a lighthouse at dusk, flat illustration",
        "a bowl of ramen, flat illustration",
        "an isometric arcade cabinet, flat illustration",
    ]
    folder = run_folder(output_dir, "azerion_decorator_list") / "generate"
    assert [sidecar(folder, i)["prompt"] for i in range(3)] == prompts
    assert sorted(requested(emulator)) == sorted(prompts)
    xcom = result.xcom("generate")
    assert xcom["count"] == 3
    assert [(entry["prompt_index"], entry["prompt"]) for entry in xcom["images"]] == list(enumerate(prompts))


def test_expand_makes_one_mapped_task_and_folder_per_value(run_dag, decorator_dags, emulator, output_dir):
    result = run_dag(decorator_dags, "azerion_decorator_mapped", conf=conf(output_dir))

    assert result.state == "success"
    assert result.states() == {("generate", i): "success" for i in range(3)}
    folder = run_folder(output_dir, "azerion_decorator_mapped")
    assert sorted(p.name for p in folder.iterdir()) == ["generate-0", "generate-1", "generate-2"]
    animals = ["fox", "owl", "whale"]
    for map_index, animal in enumerate(animals):
        metadata = sidecar(folder / f"generate-{map_index}", 0)
        assert (metadata["prompt"], metadata["map_index"]) == (f"a portrait of a {animal}", map_index)
    mapped = result.xcom_rows("generate")
    assert {i: mapped[i]["images"][0]["prompt"] for i in mapped} == {
        i: f"a portrait of a {animal}" for i, animal in enumerate(animals)
    }
    assert sorted(requested(emulator)) == [f"a portrait of a {animal}" for animal in animals]


BAD_RETURNS = [
    (42, "it returned a int: 42"),
    (["a red fox", {"prompt": "a fox"}], "it returned a list whose item 1 is a dict: {'prompt': 'a fox'}"),
    ([], "it returned an empty list; return at least one prompt"),
    (None, "it returned a NoneType: None"),
    (b"a red fox", "it returned a bytes: b'a red fox'"),
]
BAD_IDS = ["int", "list-with-dict", "empty-list", "none", "bytes"]


@pytest.mark.parametrize("returned", [42, ["a red fox", {"prompt": "a fox"}]], ids=["int", "list-with-dict"])
def test_a_run_whose_function_returns_no_prompt_fails_before_any_request(
    run_dag, decorator_dags, emulator, output_dir, capfd, returned
):
    result = run_dag(decorator_dags, "azerion_decorator_bad_return", conf=conf(output_dir, returned=returned))

    assert result.state == "failed"
    log = capfd.readouterr().out  # dag.test() runs the task in this process and logs to stdout
    assert "AzerionValidationError: @task.azerion_images function bad_return() must return" in log
    assert result.states() == {("generate", -1): "failed"}
    assert emulator.requests == [], "nothing is sent, not even a model listing"
    assert not (output_dir / "azerion_decorator_bad_return").exists(), "no folder is opened"


@pytest.mark.parametrize(("returned", "problem"), BAD_RETURNS, ids=BAD_IDS)
def test_the_error_names_the_function_and_what_it_returned(emulator, output_dir, returned, problem):
    def make_prompts(params=None):
        return params["returned"]

    operator = decorated_operator(make_prompts, output_dir)

    with pytest.raises(AzerionValidationError) as caught:
        operator.execute({"params": {"returned": returned}})

    assert isinstance(caught.value, AirflowFailException), "not retried: a retry would return the same"
    assert str(caught.value) == (
        "@task.azerion_images function test_the_error_names_the_function_and_what_it_returned.<locals>."
        f"make_prompts() must return a prompt (str) or a list of prompts (list of str); {problem}. "
        "Nothing was sent to the API."
    )
    assert emulator.requests == []


def test_a_long_return_value_is_quoted_short(output_dir):
    operator = decorated_operator(lambda: {"prompt": "x" * 10_000}, output_dir)

    with pytest.raises(AzerionValidationError, match=r"it returned a dict: \{'prompt': 'xxx") as caught:
        operator.execute({})

    assert "x" * 200 not in str(caught.value)
    assert str(caught.value).endswith("xxx.... Nothing was sent to the API.")


def test_a_tuple_of_prompts_is_taken_as_a_list(output_dir):
    operator = decorated_operator(lambda: "unused", output_dir)

    assert operator._checked_prompts(("a red fox", "a blue whale")) == ["a red fox", "a blue whale"]
    assert operator._checked_prompts("a red fox") == "a red fox"


def test_passing_prompt_to_the_decorator_is_refused_at_parse_time(output_dir):
    with pytest.raises(TypeError, match="takes its prompt"):
        decorated_operator(lambda: "a red fox", output_dir, prompt="a blue whale")


def test_templated_operator_arguments_render_before_generation(run_dag, decorator_dags, emulator, output_dir):
    result = run_dag(
        decorator_dags, "azerion_decorator_templated", logical_date=LOGICAL_DATE, conf=conf(output_dir)
    )

    assert result.state == "success"
    day_folder = output_dir / "2024-05-01"
    (image,) = day_folder.rglob("0000-0.jpg")
    assert image.parent.name == "generate"
    assert image.is_relative_to(day_folder / "azerion_decorator_templated")
    assert result.xcom("generate")["images"][0]["uri"] == image.as_uri()
    assert emulator.requests_to("/images/generations")[0].prompt == "a red fox in fresh snow"
    assert sidecar(image.parent, 0)["model"] == "stable-image-core-1.1"
