"""``[core] hostname_callable`` of ``make cluster``'s Celery workers: each worker's own name.

Two workers on one machine share its FQDN, Airflow's default hostname, so the task instances of
both would record the same ``hostname``. Each worker's environment names it instead.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``AZERION_CLUSTER_WORKER_HOSTNAME`` when set, else the FQDN (what Airflow would use)."""
    return os.environ.get("AZERION_CLUSTER_WORKER_HOSTNAME") or socket.getfqdn()
