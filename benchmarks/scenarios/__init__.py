"""What the harness measures, one module per scenario: the parts of a run (store, limits, concurrency,
peer, glance) and the older ``run(ctx) -> dict`` scenarios that ``--scenario NAME`` runs."""
