"""Apache Airflow provider for the Azerion Intelligence API.

Kept free of imports on purpose: Airflow imports provider packages while parsing DAG files.
"""

__version__ = "0.1.0"
