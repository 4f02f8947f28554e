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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
