"""The ``azerion`` connection's settings, declared once.

The hook resolves each setting from a constructor argument, the connection's extra, then the
default here; the provider info builds the connection form's ``conn-fields`` from the same table.
Kept free of Airflow and ``requests`` imports: ``get_provider_info`` loads it in every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
