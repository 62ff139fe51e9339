"""imagestore's benchmark harness (installed as ``imagestore_bench``).

Every figure is a ratio against a raw limit measured in the same run on the same
machine, never against a hard-coded number; ``imagestore bench`` runs it.
"""
