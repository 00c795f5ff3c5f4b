"""checker: provisions PostgreSQL, drives taskhub with Locust scenarios, audits, reports."""
