"""The API key as people paste it: surrounding whitespace is dropped, unsendable characters refused.

A key an HTTP header cannot carry must fail before anything is sent, as a configuration error
that never repeats the key, not even a part of it.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_azerion.exceptions import AzerionConfigurationError
from tests.hooks.conftest import SECRET_KEY

# No word of any message in it, so that a six-character window can show any part of it leaking.
RANDOM_KEY = "sk-7Qx9Lm2Vb8Rt4Wz6Np3Kd5Hj"


def _set_password(monkeypatch, emulator, password: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_DEFAULT",
        json.dumps({"conn_type": "azerion", "host": emulator.base_url, "password": password}),
    )


def _holds_part_of(text: str, key: str, part: int = 6) -> bool:
    return any(key[i : i + part] in text for i in range(len(key) - part + 1))


@pytest.mark.parametrize("pasted", [f"{SECRET_KEY}\n", f"  {SECRET_KEY}\r\n", f"\t{SECRET_KEY} "])
def test_a_key_pasted_with_surrounding_whitespace_works(emulator, make_hook, monkeypatch, pasted):
    _set_password(monkeypatch, emulator, pasted)
    hook = make_hook()
    assert hook.list_models()
    assert hook.generate_images("a cat", model="stable-image-core-1.1", size="32x32").images
    assert emulator.generation_count == 1


@pytest.mark.parametrize(
    "inner",
    ["\n", "\x00", "\r", "\x7f", "\u2019"],
    ids=["newline", "nul", "carriage-return", "delete", "non-latin-1"],
)
def test_a_key_a_header_cannot_carry_is_refused_before_sending_without_repeating_it(
    emulator, make_hook, monkeypatch, log_output, inner
):
    key = f"{RANDOM_KEY[:14]}{inner}{RANDOM_KEY[14:]}"
    _set_password(monkeypatch, emulator, key)

    with pytest.raises(AzerionConfigurationError) as err:
        make_hook().generate_images("a cat", model="stable-image-core-1.1", size="32x32")

    assert emulator.requests == []
    assert "connection 'azerion_default'" in str(err.value)
    assert "nothing was sent" in str(err.value)
    for text in (str(err.value), repr(err.value), log_output()):
        assert not _holds_part_of(text, RANDOM_KEY)
