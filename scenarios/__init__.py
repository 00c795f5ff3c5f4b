"""Locust scenarios driving taskhub: one module per scenario, each exporting `SCENARIO` (a
`checker.load.scenario.Scenario`), and each a plain locustfile too.

Nothing else lives here: the load driver is `checker.load`; the list of scenarios is this
folder (`checker.load.catalogue`).
"""
