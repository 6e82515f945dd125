"""The Airflow UI plugin of the provider: an **Images** tab on task instances and DAG runs.

:mod:`.images` is what Airflow imports (in every process that loads plugins); it stays small.
Everything else runs on the API server only, built when Airflow first asks for the plugin's
FastAPI app:

- :mod:`.app`: routes, authentication and authorization (Airflow's own auth manager);
- :mod:`.locate`: which task instances are Azerion tasks, and where their folders are;
- :mod:`.gallery`: what a folder holds (listing, ``manifest.jsonl``, sidecars), and
  :mod:`.dimensions`: pixel sizes from the images' first bytes (no Pillow);
- :mod:`.pages` and :mod:`.assets`: the server-rendered HTML, its style and its one script;
- :mod:`.thumbnails`: thumbnails made with Pillow, and :mod:`.thumbnail_store`: where they are
  kept (memory, disk) and made ahead of the browser's requests.
"""
