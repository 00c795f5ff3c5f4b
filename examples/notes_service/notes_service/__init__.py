"""Notes: authors write notes; an HTTP API over PostgreSQL."""
