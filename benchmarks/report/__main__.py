"""``python -m imagestore_bench.report results.jsonl``: render a run's report again."""

from .markdown import main

raise SystemExit(main())
