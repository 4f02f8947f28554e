"""The ``matgrad`` command: ``backends``, ``check`` (and ``bench``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._registry import entries, list_backends

__all__ = ["main"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(out)


def _cmd_backends(args: argparse.Namespace) -> int:
    rows = [
        [
            b.name,
            "yes" if b.available else f"no: {b.reason}",
            b.version,
            b.device,
            str(b.priority),
        ]
        for b in sorted(list_backends(), key=lambda b: (-b.priority, b.name))
    ]
    print(_table(["backend", "available", "version", "device", "priority"], rows))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ._check import run_check

    found = entries()
    names = args.backend or [n for n, e in found.items() if e.available]
    for name in names:
        if name not in found:
            print(f"matgrad check: unknown backend {name!r}; known: {', '.join(found)}",
                  file=sys.stderr)
            return 2
        if not found[name].available:
            print(f"matgrad check: backend {name!r} is unavailable: {found[name].reason}",
                  file=sys.stderr)
            return 2

    def progress(msg: str) -> None:
        if sys.stderr.isatty():
            print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)

    rows = run_check(names, progress=progress)
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    table = [
        [
            r.backend,
            r.op,
            str(r.cases),
            f"{r.worst_ratio:.3g}",
            f"{r.worst_rel:.2g}",
            r.worst_case,
            "ok" if not r.failures else f"FAIL ({len(r.failures)})",
        ]
        for r in rows
    ]
    print("errors against 60-digit mpmath references; 'err/allowed' must be <= 1")
    print("(allowed = backward-stability bound of NUMERICS §4 for each input)\n")
    print(_table(["backend", "operation", "cases", "err/allowed", "max rel err",
                  "worst case", "status"], table))
    failed = [f"{r.backend} {r.op}: {f}" for r in rows for f in r.failures]
    if failed:
        print("\nfailures:")
        for f in failed:
            print(f"  {f}")
        return 1
    print(f"\nall {sum(r.cases for r in rows)} checks passed")
    return 0


class _Progress:
    """tqdm when installed, else a plain text bar on stderr."""

    def __init__(self) -> None:
        self.bar: object = None
        try:
            import tqdm

            self.tqdm: object = tqdm
        except ImportError:
            self.tqdm = None

    def __call__(self, done: int, total: int, what: str) -> None:
        if self.tqdm is not None:
            if self.bar is None:
                self.bar = self.tqdm.tqdm(total=total, file=sys.stderr,  # type: ignore[attr-defined]
                                          unit="run", leave=False)
            bar = self.bar
            bar.n = done  # type: ignore[attr-defined]
            bar.set_description_str(what[:50])  # type: ignore[attr-defined]
            bar.refresh()  # type: ignore[attr-defined]
            if done >= total:
                bar.close()  # type: ignore[attr-defined]
            return
        width = 30
        filled = int(width * done / max(total, 1))
        end = "\n" if done >= total else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what[:50]:50s}",
              end=end, file=sys.stderr, flush=True)


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import _bench

    found = entries()
    for name in args.backend or []:
        if name not in found or not found[name].available:
            why = found[name].reason if name in found else "unknown"
            print(f"matgrad bench: backend {name!r} cannot run: {why}", file=sys.stderr)
            return 2
    results = _bench.run_bench(args.backend, quick=args.quick, repeats=args.repeats,
                               compare=not args.no_compare, progress=_Progress())
    info = _bench.machine_info()
    print(f"matgrad bench ({'quick' if args.quick else 'full'}) — {info['date']}")
    print(", ".join(f"{k} {v}" for k, v in info.items() if k != "date"))
    print("median seconds per call after one warm-up call; 'first' is the warm-up "
          "(includes JIT compilation);\n'speed-up' is the NumPy formula's time over this "
          "one; '/floor' is this time over the floor's\n")
    print(_table(["workload", "contestant", "median s", "first s", "speed-up", "/floor",
                  "note"], _bench.table(results)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(_bench.to_json(results))
        print(f"\nwrote {args.json}")
    if args.plot:
        _bench.plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matgrad", description="Closed-form matrix-calculus gradients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("backends", help="list registered backends")
    p.set_defaults(func=_cmd_backends)
    p = sub.add_parser("check", help="check backends against mpmath references")
    p.add_argument("--backend", action="append",
                   help="backend to check (repeatable); default: every available one")
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("bench", help="time every operation side by side")
    p.add_argument("--backend", action="append",
                   help="backend to time (repeatable); default: every available one")
    p.add_argument("--quick", action="store_true", help="small workloads (under a minute)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per contestant")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the NumPy formula, PyTorch and JAX")
    p.add_argument("--json", metavar="FILE", help="write all results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write a log-scale chart (matplotlib)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
