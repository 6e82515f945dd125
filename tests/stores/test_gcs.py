"""The operator on Google Cloud Storage (``gs://``), against gcp-storage-emulator on loopback.

The operator reaches the emulator through the Google provider's ``gs`` filesystem (gcsfs) and a
``google_cloud_platform`` connection (anonymous credentials, ``gcs.endpoint`` in its extra); what
landed is read back with google-cloud-storage.

`make` installs what these tests need: the ``gcs-test`` extra (gcsfs, google-cloud-storage,
gcp-storage-emulator...) and the Google provider itself with ``--no-deps``, since its full dependency
tree (aiplatform, ray, pandas...) cannot be installed on our constraints (see constraints/gcs-*.txt).
So this proves the provider's gs filesystem and connection code, not its whole tree. Elsewhere,
without them, the tests are skipped.
"""

from __future__ import annotations

import pytest

pytest.importorskip("airflow.providers.google", reason="the gcs extra is not installed")
pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is not installed")

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import AzerionStorageError
from tests.operators.helpers import execute, generated_prompts
from tests.stores import checks

pytestmark = pytest.mark.azerion_emulator(max_side=16)


@pytest.fixture
def store(gcs) -> checks.Store:
    return checks.Store(
        scheme="gs", bucket=gcs.bucket, conn_id=gcs.conn_id, objects=gcs.objects, cold=gcs.cold
    )


def test_images_sidecars_and_manifest_land_in_the_bucket_and_agree(emulator, store):
    checks.images_sidecars_and_manifest_agree(store, emulator)


def test_a_second_run_resumes_without_generating_again(emulator, store):
    checks.a_second_run_resumes_without_generating(store, emulator)


def test_lineage_names_the_bucket_and_the_output_prefix(emulator, store):
    checks.lineage_names_the_output_root(store, emulator, namespace=f"gs://{store.bucket}")


def test_a_missing_bucket_fails_before_any_generation(emulator, store):
    url = "gs://no-such-bucket-azerion/images/"
    task = checks.operator(store, output_path=url)

    with pytest.raises(AzerionStorageError) as caught:
        execute(task)

    assert isinstance(caught.value, AirflowFailException)
    assert url in str(caught.value)
    assert generated_prompts(emulator) == []


def test_the_probe_leaves_no_object_behind(emulator, store):
    execute(checks.operator(store))

    assert all(not key.rsplit("/", 1)[-1].startswith(".") for key in store.objects(""))
