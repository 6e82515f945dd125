"""The operator on Azure Blob Storage (``abfs://``), against Azurite on loopback.

The operator reaches Azurite through the Azure provider's ``abfs`` filesystem (adlfs) and an
Airflow connection whose extra holds the emulator's connection string; what landed is read back
with the Azure SDK.
"""

from __future__ import annotations

import pytest

pytest.importorskip("airflow.providers.microsoft.azure", reason="the azure extra is not installed")

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import AzerionStorageError
from tests.operators.helpers import execute, generated_prompts
from tests.stores import checks

pytestmark = pytest.mark.azerion_emulator(max_side=16)


@pytest.fixture
def store(azure_blob) -> checks.Store:
    return checks.Store(
        scheme="abfs",
        bucket=azure_blob.container,
        conn_id=azure_blob.conn_id,
        objects=azure_blob.objects,
        cold=azure_blob.cold,
    )


def test_images_sidecars_and_manifest_land_in_the_container_and_agree(emulator, store):
    checks.images_sidecars_and_manifest_agree(store, emulator)


def test_a_second_run_resumes_without_generating_again(emulator, store):
    checks.a_second_run_resumes_without_generating(store, emulator)


def test_lineage_names_the_container_and_the_output_prefix(emulator, store):
    checks.lineage_names_the_output_root(store, emulator, namespace=f"abfs://{store.bucket}")


def test_a_missing_container_fails_before_any_generation(emulator, store):
    task = checks.operator(store, output_path="abfs://no-such-container-azerion/images/")

    with pytest.raises(AzerionStorageError):
        execute(task)

    assert generated_prompts(emulator) == []


def test_a_missing_container_is_an_azerion_storage_error_that_is_not_retried(emulator, store):
    url = "abfs://no-such-container-azerion/images/"
    task = checks.operator(store, output_path=url)

    with pytest.raises(AzerionStorageError) as caught:
        execute(task)

    assert isinstance(caught.value, AirflowFailException)
    assert url in str(caught.value)
    assert generated_prompts(emulator) == []


def test_the_probe_leaves_no_object_behind(emulator, store):
    execute(checks.operator(store))

    assert all(not key.rsplit("/", 1)[-1].startswith(".") for key in store.objects(""))
