"""Fault injection during a load run: `--faults SPEC` parsed (`spec`), injected (`injector`),
applied to a server (`actions`) and summarised for the report (`summary`)."""
