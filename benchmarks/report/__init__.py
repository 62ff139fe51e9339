"""What a run wrote, read back: the Markdown report, the PNG plots, the targets and the older JSON report.

``python -m imagestore_bench.report results.jsonl [--plots DIR]`` renders a run again.
"""

from .markdown import load, main, markdown, plots

__all__ = ["load", "main", "markdown", "plots"]
