"""The ``azerion`` connection's settings, declared once.

The hook resolves each setting from a constructor argument, the connection's extra, then the
default here; the provider info builds the connection form's ``conn-fields`` from the same table.
Kept free of Airflow and ``requests`` imports: ``get_provider_info`` loads it in every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Spellings of a boolean setting, compared case-insensitively (real bools are taken as they are).
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class Setting:
    """One tunable of the ``azerion`` connection.

    :param name: key in the connection's extra and keyword of ``AzerionHook``.
    :param kind: Python type the value is converted to (``float``, ``int`` or ``bool``).
    :param default: value used when neither the hook's caller nor the connection sets it.
    :param label: label of the field in the connection form.
    :param description: help text of the field in the connection form.
    :param allow_zero: whether ``0`` is a valid value (numbers must otherwise be positive).
    """

    name: str
    kind: type
    default: Any
    label: str
    description: str
    allow_zero: bool = False

    def parse(self, raw: Any) -> Any:
        """``raw`` (a hook argument or a connection extra, often a string) as a value of this setting.

        ``None`` and ``""`` give the default. A boolean must be spelt as one: a typo such as
        ``"ture"`` is refused rather than read as false.

        :raises ValueError: saying what is wrong with ``raw`` (the caller names the setting).
        """
        if raw is None or raw == "":
            return self.default
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            word = str(raw).strip().lower()
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError("is not a boolean; use true or false (or 1/0, yes/no, on/off)")
        try:
            value = self.kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"is not a valid {self.kind.__name__}") from None
        if value < 0 or (value == 0 and not self.allow_zero):
            raise ValueError("must be positive")
        return value

    def conn_field(self) -> dict[str, Any]:
        """This setting as an entry of the provider info's ``conn-fields``."""
        json_type = {bool: "boolean", int: "integer", float: "number"}[self.kind]
        return {
            "label": self.label,
            "description": self.description,
            "schema": {"type": [json_type, "null"], "default": self.default},
        }


CONNECTION_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "connect_timeout", float, 10.0, "Connect timeout (s)", "Seconds to wait for a connection to the API."
    ),
    Setting(
        "read_timeout",
        float,
        300.0,
        "Read timeout (s)",
        "Seconds to wait for a response; generations can be slow.",
    ),
    Setting(
        "max_attempts",
        int,
        5,
        "Max attempts",
        "Requests sent at most per API call or download, first one included, whatever fails.",
    ),
    Setting(
        "backoff_factor",
        float,
        1.0,
        "Backoff factor (s)",
        "Base of the exponential backoff between attempts.",
        allow_zero=True,
    ),
    Setting(
        "max_retry_wait",
        float,
        60.0,
        "Max retry wait (s)",
        "Longest single wait between attempts. A server asking (Retry-After) for longer ends the "
        "call at once with its advised wait, for the task's retries.",
    ),
    Setting(
        "retry_on_timeout",
        bool,
        False,
        "Resend generations after a lost response",
        "Retry a generation whose response was lost after sending (read timeout, dropped "
        "connection). It may already have been generated and billed.",
    ),
    Setting(
        "max_download_bytes",
        int,
        128 * 1024 * 1024,
        "Max download size (bytes)",
        "Refuse result images larger than this.",
    ),
    Setting(
        "pool_maxsize",
        int,
        32,
        "HTTP pool size",
        "Connections kept open per host; the operator raises it to its max_active_requests.",
    ),
)

#: Default of every setting, by name.
DEFAULT_SETTINGS: dict[str, Any] = {setting.name: setting.default for setting in CONNECTION_SETTINGS}
SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in CONNECTION_SETTINGS}
