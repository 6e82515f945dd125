"""The Airflow UI plugin of the provider: an **Images** tab on task instances and DAG runs.

:mod:`.images` is what Airflow imports (in every process that loads plugins); it stays small.
Everything else runs on the API server only, imported when Airflow first asks for the plugin's
FastAPI app, and makes nothing (no thread, no folder) before the first request needs it:

- :mod:`.routes`: the FastAPI app, its routes, who may use them (Airflow's own auth manager), and
  what their URLs name;
- :mod:`.views`: what a page shows (task instances, their folders' images, a run's);
- :mod:`.pages` and ``templates/*.html``: the HTML, rendered by Jinja2 with autoescaping;
- :mod:`.locate`: where a task instance's folder is; :mod:`.task_facts`: which tasks are Azerion
  tasks;
- :mod:`.gallery`: what a folder holds (listing, ``manifest.jsonl``, sidecars, pixel sizes);
- :mod:`.thumbnails`: thumbnails made with Pillow, and :mod:`.thumbnail_store`: where they are
  kept (memory, disk) and made ahead of the browser's requests.
"""
