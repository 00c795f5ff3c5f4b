"""Isolation: PostgreSQL's anomaly matrix observed on a real server, and which anomaly each
taskhub operation risks and how it is kept safe.

`lab` drives real sessions step by step, `anomalies` holds Hermitage's scripts as data,
`outcome` classifies a run, `matrix` observes and reports, `operations` maps taskhub's races.
"""
