"""An auth manager for the 403 tests: Airflow's simple auth manager with two restricted users.

Every role of the simple auth manager (viewer, user, op, admin) may read every DAG, so it has no
user the Images tab must turn away. This one keeps all its rules and adds two users:

- ``outsider``: may read only DAGs whose id starts with ``other_`` (so none of the test DAGs);
- ``no-xcom``: may read every DAG and its task instances, but no XComs.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class ScopedAuthManager(SimpleAuthManager):
    """:class:`SimpleAuthManager` with the users ``outsider`` and ``no-xcom`` (see the module)."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        """Deny ``outsider`` every DAG not named ``other_*``, and ``no-xcom`` every XCom."""
        if user.username == "outsider" and not (details and (details.id or "").startswith("other_")):
            return False
        if user.username == "no-xcom" and access_entity == DagAccessEntity.XCOM:
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
