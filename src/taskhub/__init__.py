"""taskhub: the application's PostgreSQL data layer (users, sessions, tasks)."""
