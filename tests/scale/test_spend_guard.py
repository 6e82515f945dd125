"""The spend guard: a task asked for more than ``max_prompts`` prompts or ``max_images`` images fails
before anything is sent, saying how many were asked for and which argument to raise."""

from __future__ import annotations

import pytest
from airflow.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import AzerionValidationError
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import execute, generated_prompts

pytestmark = pytest.mark.azerion_emulator(max_side=16)

SEQUENTIAL = {
    "sequential_image_generation": "auto",
    "sequential_image_generation_options": {"max_images": 5},
}


def operator(output_dir, prompts: int, **kwargs) -> ImageGenerationOperator:
    return ImageGenerationOperator(
        task_id="generate",
        prompt=[f"guarded prompt {i}" for i in range(prompts)],
        output_path=output_dir.as_uri(),
        extra_params={"size": "16x16", **kwargs.pop("extra_params", {})},
        **kwargs,
    )


def test_more_prompts_than_max_prompts_fail_before_any_request(emulator, output_dir):
    with pytest.raises(AzerionValidationError) as caught:
        execute(operator(output_dir, 1001))

    message = str(caught.value)
    assert "1001 prompts" in message
    assert "max_prompts=1000" in message
    assert "raise max_prompts (e.g. max_prompts=1001)" in message
    assert isinstance(caught.value, AirflowFailException), "no retry can fix it"
    assert generated_prompts(emulator) == []
    assert list(output_dir.iterdir()) == [], "nothing written either"


def test_max_prompts_can_be_raised(emulator, output_dir):
    result = execute(operator(output_dir, 3, max_prompts=3))

    assert result["count"] == 3


def test_a_lower_max_prompts_is_enforced(emulator, output_dir):
    with pytest.raises(AzerionValidationError, match=r"holds 3 prompts, more than max_prompts=2"):
        execute(operator(output_dir, 3, max_prompts=2))

    assert generated_prompts(emulator) == []


def test_images_are_counted_as_prompts_times_n(emulator, output_dir):
    with pytest.raises(AzerionValidationError) as caught:
        execute(operator(output_dir, 30, n=4, max_images=100))

    message = str(caught.value)
    assert "30 prompts x up to 4 images each = 120 images" in message
    assert "max_images=100" in message
    assert "raise max_images (e.g. max_images=120)" in message
    assert generated_prompts(emulator) == []


def test_max_images_defaults_to_max_prompts_times_n(emulator, output_dir):
    result = execute(operator(output_dir, 5, n=2, max_prompts=5))  # 10 images: exactly the default

    assert result["count"] == 10


def test_an_explicit_max_images_below_the_default_is_enforced(emulator, output_dir):
    with pytest.raises(AzerionValidationError, match=r"= 12 images, more than max_images=10"):
        execute(operator(output_dir, 3, n=4, max_prompts=5, max_images=10))


def test_sequential_generation_counts_its_max_images(emulator, output_dir):
    with pytest.raises(AzerionValidationError) as caught:
        execute(operator(output_dir, 3, model="bytedance-seedream-4", extra_params=SEQUENTIAL, max_images=10))

    assert "3 prompts x up to 5 images each = 15 images" in str(caught.value)
    assert generated_prompts(emulator) == []


@pytest.mark.parametrize("options", [{"max_images": 5}, {}], ids=["max_images 5", "model's own 15"])
def test_sequential_generation_with_n_1_still_counts_its_max_images(emulator, output_dir, options):
    # n=1 asks for one sequence; "auto" may still return up to max_images (15 without it) images.
    extra = {"sequential_image_generation": "auto", "sequential_image_generation_options": options}
    with pytest.raises(AzerionValidationError):
        execute(operator(output_dir, 3, model="bytedance-seedream-4", n=1, extra_params=extra, max_images=10))

    assert generated_prompts(emulator) == []


def test_the_guard_counts_no_fewer_images_than_the_emulator_returns(emulator, output_dir):
    extra = {
        "size": "512x512",  # seedream's sizes; the emulator's max_side keeps the images small
        "sequential_image_generation": "auto",
        "sequential_image_generation_options": {"max_images": 3},
    }
    result = execute(
        operator(output_dir, 2, model="bytedance-seedream-4", n=1, extra_params=extra, max_images=6)
    )

    assert result["count"] == 6  # exactly the guard's bound: 2 prompts x 3 images


@pytest.mark.parametrize(
    ("argument", "value"), [("max_prompts", 0), ("max_images", -1), ("max_prompts", "10")]
)
def test_a_limit_that_is_not_a_positive_int_is_refused(emulator, output_dir, argument, value):
    with pytest.raises(AzerionValidationError, match=rf"{argument} must be an int >= 1, got {value!r}"):
        execute(operator(output_dir, 1, **{argument: value}))
