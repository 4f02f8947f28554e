"""The ``matgrad`` command: ``backends``, ``check``, ``bench`` and ``warmup``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from ._registry import Entry, entries, list_backends

if TYPE_CHECKING:  # _fuzz needs hypothesis: imported by 'check --fuzz' only
    from ._fuzz import FuzzResult

__all__ = ["main"]

#: ``bench --quick``'s help (measured: 118 s on a 2-core machine shared with
#: other jobs, load average about 6, every backend and comparison, the Numba
#: kernels compiled; the three charpoly_deriv workloads take half of it).
QUICK_HELP = ("small float64 workloads, 3 rounds: about 2 minutes on 2 cores (118 s "
              "measured on a loaded machine, once 'matgrad warmup' has compiled the kernels)")

T = TypeVar("T")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(s.rstrip() for s in out)


#: Widest line ``matgrad backends`` prints.
LINE_WIDTH = 100


def _cmd_backends(args: argparse.Namespace) -> int:
    """The registered backends, one row each; why an unavailable one is
    unavailable goes below the table (a reason can be a long import error),
    wrapped to :data:`LINE_WIDTH` characters."""
    import textwrap

    infos = sorted(list_backends(), key=lambda b: (-b.priority, b.name))
    rows = [[b.name, "yes" if b.available else "no", b.version, _clip(b.device, 24),
             str(b.priority)] for b in infos]
    header = ["backend", "available", "version", "device", "priority"]
    # the version column gets what the others leave of the line
    others = sum(max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)
                 if i != 2) + 2 * (len(header) - 1)
    room = max(len("version"), LINE_WIDTH - others)
    for r in rows:
        r[2] = _clip(r[2], room)
    print(_table(header, rows))
    missing = [b for b in infos if not b.available]
    if missing:
        print("\nunavailable:")
        for b in missing:
            print(textwrap.fill(f"{b.name}: {b.reason}", LINE_WIDTH, initial_indent="  ",
                                subsequent_indent="    ", break_long_words=True))
    return 0


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


#: Exit status of ``matgrad check --fuzz`` when hypothesis is not installed.
EXIT_NO_HYPOTHESIS = 3


def _cmd_check(args: argparse.Namespace) -> int:
    from ._check import run_check

    if args.fuzz is not None:
        return _cmd_fuzz(args)
    found = entries()
    names = args.backend or [n for n, e in found.items() if e.available]
    if not _backends_usable(names, found):
        return 2

    def progress(msg: str) -> None:
        if sys.stderr.isatty():
            print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)

    rows = _quiet_compiles(lambda: run_check(names, progress=progress), "check")
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    table = [
        [
            r.backend,
            r.op,
            str(r.cases),
            f"{r.worst_ratio:.3g}",
            r.worst_case,
            "—" if r.worst_rel != r.worst_rel else f"{r.worst_rel:.2g}",
            "ok" if not r.failures else f"FAIL ({len(r.failures)})",
        ]
        for r in rows
    ]
    print("Each case's error against an exact or 60-digit reference, divided by the error its")
    print("input allows (the backward-stability bound for that input): a case passes when")
    print("err/bound <= 1.  'worst case' is the case with the largest err/bound, 'its rel err'")
    print("that case's normwise error relative to the exact result (large only where the exact")
    print("value is tiny next to what the input's rounding can move it by, e.g. p at an")
    print("eigenvalue; '—': the exact value is 0).\n")
    print(_table(["backend", "operation", "cases", "err/bound", "worst case", "its rel err",
                  "status"], table))
    failed = [f"{r.backend} {r.op}: {f}" for r in rows for f in r.failures]
    if failed:
        print("\nfailures:")
        for f in failed:
            print(f"  {f}")
        return 1
    print(f"\nall {sum(r.cases for r in rows)} checks passed")
    return 0


def _backends_usable(names: Sequence[str], found: Mapping[str, Entry],
                     command: str = "check") -> bool:
    """Whether every backend in ``names`` is known and available; if not,
    say why for the first that is not, on stderr (``matgrad COMMAND: ...``)."""
    for name in names:
        if name not in found:
            print(f"matgrad {command}: unknown backend {name!r}; known: {', '.join(found)}",
                  file=sys.stderr)
            return False
        if not found[name].available:
            print(f"matgrad {command}: backend {name!r} is unavailable: {found[name].reason}",
                  file=sys.stderr)
            return False
    return True


def _choices_known(choices: Sequence[tuple[str, Sequence[str] | None, Sequence[str]]]) -> bool:
    """Whether every given value of each ``(flag, given, known)`` is known; if
    not, list the unknown ones of the first such flag on stderr."""
    for what, given, known in choices:
        bad = [g for g in given or [] if g not in known]
        if bad:
            print(f"matgrad check: unknown {what} {', '.join(bad)}; known: {', '.join(known)}",
                  file=sys.stderr)
            return False
    return True


def _print_fuzz_result(result: FuzzResult, rerun: Callable[[str | None], str]) -> int:
    """Print the examples run per backend, the time taken and the failure
    (with the command that repeats the run and a reproducer script), if
    any; return the exit status.  ``rerun(backend)``: that command."""
    rows = [[b, str(sum(per.values())), ", ".join(f"{k} {v}" for k, v in sorted(per.items()))]
            for b, per in result.counts.items()]
    print(f"\n{_table(['backend', 'examples', 'by property'], rows)}")
    print(f"\n{result.seconds:.1f} s, {result.rounds} round(s) of examples per backend")
    if result.failure is not None:
        f = result.failure
        print(f"\nFAILED: backend {f.backend!r}, operation {f.op}, property {f.check} "
              f"(minimal example after shrinking; seed {result.seed})")
        print(f"expected: {f.expected}")
        print(f"got:      {f.got}")
        print(f"\nrerun: {rerun(f.found_on or f.backend)}")
        print("\nreproducer (inputs round-trip bit for bit):\n")
        print(f.reproducer())
        return 1
    if result.error is not None:
        print(f"\nFAILED: {type(result.error).__name__}: {result.error}")
        print(f"\nrerun: {rerun(None)}")
        return 1
    print(f"no failures (seed {result.seed})")
    return 0


def _print_to_stderr(msg: str) -> None:
    """Fuzzing progress: one line per report on stderr."""
    print(msg, file=sys.stderr, flush=True)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    """``matgrad check --fuzz SECONDS``: hostile inputs until the time is up."""
    try:
        from . import _fuzz
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "hypothesis":
            raise
        print("matgrad check --fuzz needs hypothesis, which is not installed:\n"
              "    pip install 'matgrad[testing]'", file=sys.stderr)
        return EXIT_NO_HYPOTHESIS
    import random

    import hypothesis

    names: list[str] | None = args.backend or None  # None: every available backend
    if not _backends_usable(args.backend or [], entries()) or not _choices_known(
            (("--op", args.op, _fuzz.OPS), ("--property", args.property, _fuzz.CHECKS))):
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    ops = tuple(args.op or _fuzz.OPS)
    checks = tuple(args.property or _fuzz.CHECKS)

    def rerun(backend: str | None) -> str:
        """The command that repeats this run (only ``backend``'s share of it:
        each backend's examples depend on the seed alone)."""
        words = ["matgrad", "check", "--fuzz", f"{args.fuzz:g}", "--seed", str(seed)]
        for b in [backend] if backend else args.backend or []:
            words += ["--backend", b]
        for o in args.op or []:
            words += ["--op", o]
        for c in args.property or []:
            words += ["--property", c]
        return " ".join(words)

    print(f"matgrad check --fuzz {args.fuzz:g}: hostile inputs against "
          f"{', '.join(names) if names else 'every available backend'} "
          f"(hypothesis {hypothesis.__version__}), seed {seed}")
    print(f"properties: {', '.join(checks)}; operations: {', '.join(ops)}")
    print(f"repeat with: {rerun(None)}")
    print("progress on stderr: [seconds so far] backend: examples run (per property)")
    result = _fuzz.fuzz(args.fuzz, names, checks=checks, ops=ops, progress=_print_to_stderr,
                        seed=seed)
    return _print_fuzz_result(result, rerun)


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

    if not _backends_usable(args.backend or [], entries(), "bench"):
        return 2
    if args.group == "sweep":
        return _bench_sweep(args)
    ops = args.group in ("ops", "all")
    repeats = args.repeats or (_bench.QUICK_REPEATS if args.quick else _bench.MIN_REPEATS)
    results = (_bench.run_bench(args.backend, quick=args.quick, repeats=repeats,
                                compare=not args.no_compare, progress=_Progress())
               if ops else [])
    autodiff = (_bench.run_autodiff(quick=args.quick, repeats=repeats,
                                    progress=_Progress())
                if args.group in ("autodiff", "all") else None)
    info = _bench.machine_info()
    print(f"matgrad bench ({'quick' if args.quick else 'full'}) — {info['date']}")
    print(", ".join(f"{k} {v}" for k, v in info.items() if k != "date"))
    if ops:
        print("median seconds per call [interquartile range] of interleaved rounds after "
              "one warm-up call each;\n'first' is the warm-up (includes JIT compilation); "
              "'speed-up' is the NumPy formula's median\nover this one; '/floor' is this "
              "median over the floor's\n")
        print(_table(["workload", "contestant", "median s [IQR]", "first s", "speed-up", "/floor",
                      "note"], _bench.table(results)))
    if autodiff is not None:
        print("\nautodiff: forward + backward through matgrad.torch / matgrad.jax against "
              "the framework's own\nlinalg (jitted for JAX), float64; medians of interleaved "
              "repeats after one warm-up each;\n'speed-up' is the framework's median over "
              "matgrad's\n")
        print(_table(_bench.AUTODIFF_HEADERS, _bench.autodiff_table(autodiff)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(_bench.to_json(results, autodiff))
        print(f"\nwrote {args.json}")
    if args.plot and results:
        _bench.plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _bench_sweep(args: argparse.Namespace) -> int:
    from . import _sweep

    points = _sweep.run_sweep(args.backend, repeats=args.repeats or 7, progress=_Progress())
    print("median seconds per call of interleaved rounds, by input size; the last "
          "columns are each\nbackend's median over the first's\n")
    headers, rows = _sweep.sweep_table(points)
    print(_table(headers, rows))
    if args.json:
        import dataclasses
        import json

        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([dataclasses.asdict(p) for p in points], fh, indent=1)
        print(f"\nwrote {args.json}")
    if args.plot:
        _sweep.plot_sweep(points, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _quiet_compiles(work: Callable[[], T], command: str) -> T:
    """``work()`` with its compile warnings summed up in one line on stderr."""
    import warnings

    from ._backend import CompileWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompileWarning)
        result = work()
    compiles = 0
    for w in caught:
        if issubclass(w.category, CompileWarning):
            compiles += 1
        else:  # any other warning is shown as usual
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    if compiles:
        print(f"matgrad {command}: {compiles} calls waited for kernels to compile (cached for "
              "later runs; 'matgrad warmup' compiles them ahead of time)", file=sys.stderr)
    return result


def _cmd_warmup(args: argparse.Namespace) -> int:
    """``matgrad warmup``: compile every kernel into the on-disk cache."""
    import time

    from ._warmup import parse_dtypes, run_warmup

    try:
        dtypes = parse_dtypes(args.dtypes)
    except ValueError as exc:
        print(f"matgrad warmup: {exc}", file=sys.stderr)
        return 2
    if not _backends_usable(args.backend or [], entries(), "warmup"):
        return 2
    t0 = time.perf_counter()
    results = run_warmup(dtypes, args.backend, jobs=args.jobs)
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"matgrad warmup: {r.backend} {r.label}: {r.error}", file=sys.stderr)
    print(f"matgrad warmup: {len(results) - len(failed)} of {len(results)} steps done for "
          f"{', '.join(map(str, dtypes))} in {time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0


def _positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


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
    p.add_argument("--fuzz", type=_positive_seconds, metavar="SECONDS",
                   help="instead, run adversarial property-based checks (hypothesis) for "
                        "about SECONDS; needs 'matgrad[testing]'")
    p.add_argument("--op", action="append", help="with --fuzz: only this operation (repeatable)")
    p.add_argument("--property", action="append",
                   help="with --fuzz: only this property: reference, known, scaling, "
                        "graded, batch, agreement (repeatable)")
    p.add_argument("--seed", type=int, help="with --fuzz: random seed (default: a fresh one, "
                                            "printed); the same seed repeats the same examples")
    p.set_defaults(func=_cmd_check, parser=p)
    p = sub.add_parser("bench", help="time every operation side by side")
    p.add_argument("--backend", action="append",
                   help="backend to time (repeatable); default: every available one")
    p.add_argument("--quick", action="store_true", help=QUICK_HELP)
    p.add_argument("--repeats", type=_positive_int,
                   help="interleaved rounds (timed calls per contestant); default 7, "
                        "3 with --quick")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the NumPy formula, PyTorch and JAX")
    p.add_argument("--json", metavar="FILE", help="write all results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write a log-scale chart (matplotlib)")
    p.add_argument("--group", choices=("ops", "autodiff", "all", "sweep"), default="ops",
                   help="ops: every operation against formulas and frameworks (default); "
                        "autodiff: forward + backward through matgrad.torch / matgrad.jax "
                        "against torch.linalg / jax.numpy.linalg; all: both; sweep: each "
                        "backend from one 2x2 matrix to large inputs")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("warmup", help="compile every kernel into the on-disk cache")
    p.add_argument("--dtypes", metavar="LIST",
                   help="comma-separated dtypes (default: float64,float32,complex64,complex128)")
    p.add_argument("--backend", action="append",
                   help="backend to warm up (repeatable); default: every available one")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="worker processes compiling at once (default: the CPUs available)")
    p.set_defaults(func=_cmd_warmup)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check" and args.fuzz is None:
        given = [flag for flag, v in (("--op", args.op), ("--property", args.property),
                                      ("--seed", args.seed)) if v is not None]
        if given:  # exits with status 2
            args.parser.error(f"{', '.join(given)} only apply with --fuzz SECONDS")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
