"""Shared test configuration. The database fixtures come from the checker's pytest plugin
(`checker.pytest_plugin`: pg_server, pg_janitor, pg_template, db_url, db_engine)."""
