"""``imagestore bench``: run the scenarios, print one JSON object on stdout and a table on stderr."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .figures import GiB, LoadMeter, MiB
from .xfs import XfsMount, fs_type

SCENARIOS = ("file", "formats", "rbd", "cache")
DEFAULT_SCENARIOS = ("file", "formats")
QUICK = {"size": 32 * MiB, "big": 128 * MiB, "clone": 256 * MiB, "runs": 2}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``imagestore bench`` (a leading ``--`` separator is ignored)."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="imagestore bench", description=__doc__)
    p.add_argument("--scenario", action="append", choices=SCENARIOS,
                   help="scenario to run (repeatable; default: file formats)")
    p.add_argument("--size-gib", type=float, default=1.0, help="image size of the throughput figures (1)")
    p.add_argument("--big-gib", type=float, default=4.0, help="big image of the RSS comparison (4)")
    p.add_argument("--clone-gib", type=float, default=8.0, help="big image of the cow-clone comparison (8)")
    p.add_argument("--runs", type=int, default=5, help="repetitions of each timed run; best is reported (5)")
    p.add_argument("--workdir", type=Path, help="where sources and stores go (default: a temp dir in /var/tmp)")
    p.add_argument("--xfs", type=Path, help="a mounted reflink XFS; as root, one is mounted here if absent")
    p.add_argument("--out", type=Path, help="also write the JSON report to this file")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes for a smoke test (< 20 s); mounts no XFS unless --xfs is given")
    p.add_argument("--idle-wait", type=float, default=3.0,
                   help="before each compared run, wait up to this many seconds for the other CPU load "
                        "to drop (shared machines; 0 = never; total capped at 40x this) (3)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    for name in ("size_gib", "big_gib", "clone_gib"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def environment(workdir: Path) -> dict[str, Any]:
    """What the figures were measured on."""
    import imagestore

    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = round(int(fh.readline().split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return {
        "imagestore": imagestore.__version__, "imagestore_path": os.path.dirname(imagestore.__file__ or ""),
        "python": platform.python_version(),
        "platform": platform.platform(), "cpus": os.cpu_count(), "mem_gib": mem,
        "workdir_fs": fs_type(workdir), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_rbd(ctx: Any) -> dict[str, Any]:
    """The rbd scenario, owned by its own module; skipped when that module is absent or broken."""
    try:
        module = importlib.import_module(f"{__package__}.scenario_rbd")
    except Exception as exc:  # any import failure means "not available here"
        return {"skipped": f"skipped: scenario_rbd cannot be imported ({type(exc).__name__}: {exc})"}
    sizes = tuple(round(s / GiB, 4) for s in (ctx.size, ctx.big))
    return dict(module.run(str(ctx.workdir), sizes_gib=sizes))


def registry() -> dict[str, Callable[[Any], dict[str, Any]]]:
    """Scenario name -> ``run(ctx)``; modules load only when their scenario runs."""
    def lazy(name: str) -> Callable[[Any], dict[str, Any]]:
        return lambda ctx: importlib.import_module(f"{__package__}.scenario_{name}").run(ctx)

    return {"file": lazy("file"), "formats": lazy("formats"), "rbd": run_rbd, "cache": lazy("cache")}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every scenario ran (missed targets are figures, not failures)."""
    args = parse_args(argv)
    from imagestore.config import StoreSettings

    from .context import Context
    from .report import text_table

    names = list(dict.fromkeys(args.scenario or DEFAULT_SCENARIOS))
    if args.quick:
        size, big, clone, runs = QUICK["size"], QUICK["big"], QUICK["clone"], min(args.runs, QUICK["runs"])
    else:
        size, big, clone, runs = (int(args.size_gib * GiB), int(args.big_gib * GiB),
                                  int(args.clone_gib * GiB), args.runs)
    parent = args.workdir or Path("/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="imagestore-bench-", dir=parent))
    verbose = not args.quiet

    def log(message: str) -> None:
        if verbose:
            print(f"[bench] {message}", file=sys.stderr, flush=True)

    xfs = None
    started = time.perf_counter()
    report: dict[str, Any] = {}
    failed = False
    try:
        if "file" in names:
            xfs_gib = int((clone + 2 * size) / GiB) + 4
            xfs = XfsMount(args.xfs, allow_mount=not args.quick or args.xfs is not None, size_gib=xfs_gib, log=log)
        ctx = Context(workdir=workdir, size=size, big=big, clone=clone,
                      chunk_size=StoreSettings().chunk_size, runs=runs, quick=args.quick,
                      xfs=xfs.path if xfs else None, xfs_skip=xfs.skip if xfs else None, verbose=verbose,
                      quiet_wait=0.0 if args.quick else args.idle_wait,
                      quiet_budget=0.0 if args.quick else 40 * args.idle_wait)
        report = {
            "environment": environment(workdir),
            "settings": {"scenarios": names, "size_bytes": size, "big_bytes": big, "clone_bytes": clone,
                         "runs": runs, "quick": args.quick, "chunk_size": ctx.chunk_size,
                         "workdir": str(workdir), "xfs": str(ctx.xfs) if ctx.xfs else None},
            "scenarios": {},
            "targets": [],
        }
        scenarios = registry()
        for name in names:
            log(f"scenario {name}")
            meter = LoadMeter()
            try:
                result = scenarios[name](ctx)
            except Exception as exc:  # one scenario's failure is reported, not fatal
                failed = True
                result = {"error": f"{type(exc).__name__}: {exc}"}
            result["load"] = meter.read()
            report["scenarios"][name] = result
            for t in result.get("targets", []):
                report["targets"].append({"scenario": name, **t})
            if _has_error(result):
                failed = True
        report["idle_waits"] = dict(ctx.quiet_stats)
        report["duration_s"] = round(time.perf_counter() - started, 1)
    finally:
        if xfs is not None:
            xfs.release()
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(report, indent=2, sort_keys=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    print(text_table(report), file=sys.stderr)
    return 1 if failed else 0


def _has_error(result: dict[str, Any]) -> bool:
    """Whether the scenario or one of its parts reported an error."""
    return "error" in result or any(isinstance(v, dict) and "error" in v for v in result.values())
