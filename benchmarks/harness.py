"""``imagestore bench``: every store through one scenario, against same-run limits; JSONL, Markdown, plots.

Stores: ``file`` and ``memory`` always; with ``--with-services`` also ``rbd``
(Ceph, memstore OSD), ``s3-rgw`` (radosgw), ``s3-moto`` (moto's server) and
``swift`` (a SAIO), started here and stopped at the end; plus every store of
``--config FILE``. ``--store NAME`` picks some. The older ``run(ctx) -> dict``
scenario modules run with ``--scenario NAME``; their results land in the
JSONL as ``legacy`` records and their targets as ``target`` records.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .figures import MiB, parse_size, size_label

DEFAULT_SIZES = ("64M", "256M", "1G")
DEFAULT_LEVELS = (1, 4, 16)
PARTS = ("store", "peer", "glance", "concurrency")
#: the ``run(ctx) -> dict`` scenario modules (``scenarios/NAME.py``), run through the legacy adapter
LEGACY_SCENARIOS = ("file", "formats", "rbd", "cache", "swift", "s3", "hardening", "convert")
QUICK_SIZES = ("16M", "64M")
QUICK_LEVELS = (1, 4)
QUICK_CONCURRENCY_SIZE = "16M"
QUICK_REPEATS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``imagestore bench`` (a leading ``--`` separator is ignored)."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="imagestore bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", action="append", help="measure only this store (repeatable; default: every store)")
    p.add_argument("--config", type=Path, help="an imagestore TOML whose stores are measured too")
    p.add_argument("--size", action="append", help="image size (repeatable, e.g. --size 64M --size 2G; "
                                                   f"default {' '.join(DEFAULT_SIZES)})")
    p.add_argument("--repeats", type=int, help="timed repeats of each figure (3; --quick 2)")
    p.add_argument("--concurrency", action="append", type=int,
                   help="client counts (repeatable; default 1 4 16; 0 = no concurrency figures)")
    p.add_argument("--concurrency-size", help="bytes per client in the concurrency figures (64M)")
    p.add_argument("--mode", action="append", choices=("threads", "processes"),
                   help="how concurrent clients run (default both)")
    p.add_argument("--clone-size", help="big image of the cow-clone O(1) figure (8G; 0 = none)")
    p.add_argument("--rss-size", action="append",
                   help="unknown-size add sizes of the S3/Swift RSS figure (default 1G 2G)")
    p.add_argument("--with-services", action="store_true",
                   help="start Ceph with radosgw, a Swift SAIO and moto for the run, and stop them after "
                        "(Ceph and Swift start from a source checkout's scripts/)")
    p.add_argument("--services", default="ceph,swift,moto", help="which services --with-services starts")
    p.add_argument("--glance", action="store_true", help="also upload/download through a real Glance "
                   "(imagestore vs glance_store drivers); needs scripts/glance-venv.sh")
    p.add_argument("--no-peer", action="store_true", help="skip the glance_store side-by-side figures")
    p.add_argument("--scenario", action="append", choices=LEGACY_SCENARIOS,
                   help="also run this run(ctx) scenario module (repeatable)")
    p.add_argument("--part", action="append", metavar="PART[=STORE,...]",
                   help=f"run only these parts ({', '.join(PARTS)}), optionally for some stores only "
                        "(repeatable; default: all, for every store)")
    p.add_argument("--quick", action="store_true", help="small sizes and fewer repeats (a few minutes)")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="directory of results.jsonl, "
                   "report.md and the plots (bench-out)")
    p.add_argument("--plots", type=Path, help="where the PNG plots go (default: --out)")
    p.add_argument("--workdir", type=Path, help="parent of the temporary work directory (/var/tmp)")
    p.add_argument("--xfs", type=Path, help="a mounted reflink XFS for the file store (as root one is mounted)")
    p.add_argument("--no-xfs", action="store_true", help="never mount an XFS; the file store lives in --workdir")
    p.add_argument("--idle-wait", type=float, default=3.0, help="seconds to wait for a quiet machine per step (3)")
    p.add_argument("--idle-budget", type=float, default=300.0, help="total seconds of such waits (300)")
    p.add_argument("--osd-mb", type=int, default=6144, help="memstore OSD capacity (RAM) for --with-services")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = p.parse_args(argv)
    q = a.quick
    try:
        a.sizes = [parse_size(s) for s in (a.size or (QUICK_SIZES if q else DEFAULT_SIZES))]
        a.concurrency_bytes = parse_size(a.concurrency_size or (QUICK_CONCURRENCY_SIZE if q else "64M"))
        clone = a.clone_size if a.clone_size is not None else (None if q else "8G")
        a.clone_bytes = parse_size(clone) if clone not in (None, "0") else None
        a.rss_bytes = [parse_size(s) for s in (a.rss_size or ([] if q else ["1G", "2G"]))]
    except ValueError as exc:
        p.error(str(exc))
    a.levels = [n for n in (a.concurrency or (QUICK_LEVELS if q else DEFAULT_LEVELS)) if n > 0]
    a.modes = a.mode or ["threads", "processes"]
    a.parts = {}
    for item in a.part or [f"{x}" for x in PARTS if x != "glance" or a.glance]:
        name, _, stores = item.partition("=")
        if name not in PARTS:
            p.error(f"--part {name}: choose from {', '.join(PARTS)}")
        a.parts[name] = set(stores.split(",")) if stores else None
    if a.repeats is not None and a.repeats < 1:
        p.error("--repeats must be at least 1")
    a.repeats = a.repeats or (QUICK_REPEATS if q else 3)
    _need_checkout(p, a)
    return a


def _need_checkout(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Ceph, Swift and Glance start from the source checkout's scripts: without one, say so before the run."""
    from .env.checkout import need_checkout, source_tree

    if source_tree() is not None:
        return
    wanted = {s.strip() for s in a.services.split(",")} if a.with_services else set()
    for part in [*(f"--with-services {s}" for s in sorted(wanted & {"ceph", "swift"})), *(["--glance"] * a.glance)]:
        p.error(need_checkout(part))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every figure ran (missed targets are figures, not failures)."""
    args = parse_args(argv)
    faulthandler.enable()  # a crash in a C library (librbd) leaves its traceback in the log
    from . import report
    from .env.noise import NoiseGuard
    from .progress import Progress
    from .runner import Run, env_record
    from .env.services import Services
    from .env.xfs import XfsMount

    args.out.mkdir(parents=True, exist_ok=True)
    plots = args.plots or args.out
    jsonl = args.out / "results.jsonl"
    parent = args.workdir or Path("/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="imagestore-bench-", dir=parent))
    started = time.monotonic()
    xfs = None
    services = Services(log=lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True))
    code = 1
    with open(jsonl, "w") as out, services:
        run = Run(workdir=workdir, out=out, repeats=args.repeats, verbose=not args.quiet,
                  guard=NoiseGuard(wait_s=0.0 if args.quick else args.idle_wait,
                                   budget_s=0.0 if args.quick else args.idle_budget))
        try:
            if args.with_services:
                services.start({s.strip() for s in args.services.split(",") if s.strip()}, args.osd_mb)
            if not args.no_xfs:
                xfs = XfsMount(args.xfs, allow_mount=not args.quick or args.xfs is not None,
                               size_gib=max(4, int((args.clone_bytes or 0) * 1.2 / (1 << 30)) + 6),
                               log=run.log)
            from .stores import plan_stores

            backends, cross, skips = plan_stores(run, args, services, xfs)
            settings = {"sizes": args.sizes, "repeats": args.repeats, "levels": args.levels, "modes": args.modes,
                        "concurrency_size": args.concurrency_bytes, "clone_size": args.clone_bytes,
                        "rss_sizes": args.rss_bytes, "quick": args.quick, "chunk_size": run.chunk,
                        "parts": {k: sorted(v) if v else None for k, v in args.parts.items()},
                        "workdir": str(workdir), "xfs": str(xfs.path) if xfs and xfs.path else None,
                        "services": sorted(k for k in ("ceph", "swift", "moto") if getattr(services, k)),
                        "argv": list(argv if argv is not None else sys.argv[1:])}
            run.emit(env_record(settings, {b.name: b.driver for b in backends}))
            for name, why in skips.items():
                run.skip("store", name, why)
            for name, why in services.failures.items():
                run.skip("services", name, why)
            if sys.stderr.isatty() and not args.quiet:
                run.progress = Progress(_planned_steps(args, backends))
            _run_all(run, args, backends, cross, services)
            code = 1 if run.failed else 0
        except KeyboardInterrupt:
            run.log("interrupted: stopping the services")
            code = 130
        finally:
            if run.progress is not None:
                run.progress.close()
            for b in [*backends_or_empty(locals()), *cross_or_empty(locals())]:
                try:
                    b.close()
                except Exception as exc:  # noqa: BLE001 - cleanup goes on
                    run.log(f"closing {b.name}: {exc!r}")
            run.drop_sources()
            duration = round(time.monotonic() - started, 1)
            try:
                run.emit({"kind": "end", "duration_s": duration, "failed": code != 0,
                          "noise_guard": run.guard.summary()})
            except Exception:  # noqa: BLE001 - the JSONL may be closed on a hard failure
                pass
            if xfs is not None:
                xfs.release()
            shutil.rmtree(workdir, ignore_errors=True)
    records = report.load(jsonl)
    md = report.markdown(records)
    (args.out / "report.md").write_text(md)
    notes = report.plots(records, plots)
    print(md)
    for n in notes:
        print(f"[bench] {n}", file=sys.stderr)
    print(f"[bench] {jsonl} {args.out / 'report.md'} (took {duration:.0f}s)", file=sys.stderr)
    return code


def backends_or_empty(scope: dict[str, Any]) -> list[Any]:
    return list(scope.get("backends") or [])


def cross_or_empty(scope: dict[str, Any]) -> list[Any]:
    return [c for c in (scope.get("cross") or {}).values() if c is not None and not getattr(c, "shared", False)]


def _planned_steps(args: argparse.Namespace, backends: list[Any]) -> int:
    per_size = args.repeats * (4 + 5 + 2 + 3 + 2)
    cc = len(args.levels) * 2 * (4 * len(args.modes))
    return int(len(backends) * (len(args.sizes) * per_size + cc) + len(args.sizes) * 3 * args.repeats)


def _run_all(run: Any, args: argparse.Namespace, backends: list[Any], cross: dict[str, Any],
             services: Any) -> None:
    from .scenarios.concurrency import run_concurrency
    from .scenarios.limits import run_machine_limits
    from .scenarios.store import StoreOptions, run_store

    def wanted(part: str) -> list[Any]:
        if part not in args.parts:
            return []
        only = args.parts[part]
        return [b for b in backends if only is None or b.name in only]

    if wanted("store"):
        run_machine_limits(run, args.sizes, backends[0].algorithms if backends else ("md5", "sha512"))
    for b in wanted("store"):
        run.log(f"store {b.name} ({b.driver}): sizes {', '.join(size_label(s) for s in args.sizes)}")
        opt = StoreOptions(sizes=args.sizes, clone_size=args.clone_bytes if b.store.capabilities.cow_clone else None,
                           rss_sizes=tuple(args.rss_bytes) if b.driver in ("s3", "swift") else (),
                           cross=cross.get(b.name))
        run_store(run, b, opt)
    if not args.no_peer and wanted("peer"):
        from .scenarios.peer import run_peers

        run_peers(run, wanted("peer"), args.sizes)
    if wanted("glance"):
        from .scenarios.glance import run_glance

        run_glance(run, wanted("glance"), args.sizes)
    for b in wanted("concurrency") if args.levels else []:  # last: the longest part, after the single-stream figures
        run.log(f"store {b.name}: concurrency {args.levels} x {size_label(args.concurrency_bytes)}")
        try:
            run_concurrency(run, b, args.concurrency_bytes, args.levels, args.modes)
        except Exception as exc:  # reported, the next store goes on
            run.failed = True
            run.skip("concurrency", b.name, f"{type(exc).__name__}: {exc}")
    for name in args.scenario or []:
        run_legacy(run, name, args)


def run_legacy(run: Any, name: str, args: argparse.Namespace) -> None:
    """A ``run(ctx) -> dict`` scenario module, with the old Context; its result and targets go to the JSONL."""
    from imagestore.config import StoreSettings

    from .env.context import Context

    try:
        module = importlib.import_module(f"{__package__}.scenarios.{name}")
    except Exception as exc:  # absent or broken: a skip, not a failure of the run
        run.skip(name, "-", f"scenarios.{name} cannot be imported ({type(exc).__name__}: {exc})")
        return
    size = min(args.sizes[-1], 1 << 30)
    wd = run.workdir / f"legacy-{name}"
    wd.mkdir()
    ctx = Context(workdir=wd, size=size, big=max(args.sizes[-1], 4 * size if not args.quick else 2 * size),
                  clone=args.clone_bytes or 2 * size, chunk_size=StoreSettings().chunk_size,
                  runs=args.repeats, quick=args.quick, verbose=not args.quiet,
                  quiet_wait=0.0 if args.quick else args.idle_wait,
                  quiet_budget=0.0 if args.quick else args.idle_budget / 4)
    run.log(f"legacy scenario {name}")
    try:
        result = module.run(ctx)
    except Exception as exc:
        run.failed = True
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    run.emit({"kind": "legacy", "scenario": name, "result": result})
    for t in result.get("targets", []) if isinstance(result, dict) else []:
        run.emit({"kind": "target", "id": f"{name}.{t.get('id')}", "description": t.get("description", ""),
                  "value": t.get("value"), "op": t.get("op", ">="), "threshold": t.get("limit"),
                  "met": t.get("met"), "reason": "legacy scenario"})


os.environ.setdefault("PYTHONUNBUFFERED", "1")
_ = MiB
