"""``python -m imagestore_bench``: same as ``imagestore bench``."""

from .harness import main

raise SystemExit(main())
