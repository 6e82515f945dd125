"""TaskFlow decorators of the Azerion provider: ``@task.azerion_images``.

Registered through ``get_provider_info()``'s ``task-decorators``, so ``from airflow.sdk import task``
then ``@task.azerion_images(...)`` works once the provider is installed. Importing
:func:`azerion_images_task` from here gives the same decorator with its keyword arguments typed.
Light at import, as DAG files import it on every parse: no hook, HTTP or storage modules.
"""

from __future__ import annotations

from airflow_provider_azerion.decorators.azerion_images import azerion_images_task

__all__ = ["azerion_images_task"]
