"""Second derivatives: matgrad against the frameworks' own, timed side by side.

    python asv_bench/second_order_bench.py [--rounds 9] [--json out.json] [--quick]

Three workloads, each a set of contestants timed in ``--rounds`` interleaved
rounds (the contestants' order alternating) after one warm-up call each;
medians and interquartile ranges, ratios of medians:

* ``det_hvp`` on 1 000 000 × 3×3 against ``det_grad`` on the same input
  (the target: within 2× of it);
* ``det_hessian`` on 100 000 × 3×3 against
  ``torch.func.vmap(torch.func.hessian(torch.linalg.det))`` and
  ``jax.jit(jax.vmap(jax.hessian(jnp.linalg.det)))`` (target: ≥ 5× both);
* the Hessian-vector product of ``Σ log|det A|`` on 100 000 × 8×8 SPD
  matrices through ``matgrad.torch.slogdet``, against the same
  ``torch.func.jvp(torch.func.grad(f), (A,), (V,))`` on
  ``torch.linalg.slogdet`` (target: ≥ 2×), and ``matgrad.logdet_hvp``
  itself.

Every matgrad result is compared with the framework's before timing (the
relative difference is printed, so the numbers compare equal work, or show
where the framework's result is wrong: matgrad's 3×3 Hessian is exact, and
the count of slots where a framework's differs from it is printed).  Prints a
Markdown table; ``--json`` keeps the raw times.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import matgrad


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def _time(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _interleaved(contestants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    for fn in contestants.values():  # warm-up: compile, trace, first-use
        fn()
    times: dict[str, list[float]] = {k: [] for k in contestants}
    names = list(contestants)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            time.sleep(0.2)  # let the previous contestant's thread pools go idle
            times[name].append(_time(contestants[name]))
    return times


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.complex128), np.asarray(b, dtype=np.complex128)
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", default="")
    parser.add_argument("--quick", action="store_true",
                        help="batches 100× smaller (a check that the script runs)")
    args = parser.parse_args()
    if args.rounds < 7:
        parser.error("--rounds must be at least 7")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import torch

    import matgrad.torch as mt

    rng = np.random.default_rng(0)
    k = 100 if args.quick else 1
    notes: list[str] = []
    rows: list[tuple[str, str, str, dict[str, list[float]], str, str, float]] = []

    # 1. det_hvp against det_grad, 1 000 000 × 3×3
    A = rng.standard_normal((1_000_000 // k, 3, 3))
    V = rng.standard_normal((1_000_000 // k, 3, 3))
    t = _interleaved({"det_hvp": lambda: matgrad.det_hvp(A, V),
                      "det_grad": lambda: matgrad.det_grad(A)}, args.rounds)
    rows.append(("det_hvp 1000000×3×3", "det_hvp", "det_grad (same input)", t,
                 "det_grad", "≤ 2× det_grad", float("nan")))

    # 2. det_hessian against vmap(hessian(det)), 100 000 × 3×3
    A3 = rng.standard_normal((100_000 // k, 3, 3))
    At = torch.from_numpy(A3)
    Aj = jnp.asarray(A3)
    th = torch.func.vmap(torch.func.hessian(torch.linalg.det))
    jh = jax.jit(jax.vmap(jax.hessian(jnp.linalg.det)))
    mine = matgrad.det_hessian(A3)
    # matgrad's 3×3 Hessian is exact (entries ±A_mq): the reference here
    tv = th(At).numpy()
    wrong = int((np.abs(tv - mine).reshape(len(A3), -1).max(axis=1)
                 > 1e-12 * np.abs(mine).reshape(len(A3), -1).max(axis=1)).sum())
    one = max(_rel(mine[i], torch.func.hessian(torch.linalg.det)(At[i]).numpy())
              for i in range(4))
    notes.append(f"torch.func.vmap(torch.func.hessian(torch.linalg.det)) differs from the "
                 f"exact Hessian in {wrong} of {len(A3)} slots; torch.func.hessian of one "
                 f"matrix at a time agrees to {one:.1e} (first 4 slots).")
    t = _interleaved({"matgrad": lambda: matgrad.det_hessian(A3),
                      "torch": lambda: th(At),
                      "jax": lambda: jh(Aj).block_until_ready()}, args.rounds)
    rows.append(("det_hessian 100000×3×3", "matgrad", "torch.func.vmap(hessian(det))", t,
                 "torch", "≥ 5×", _rel(mine, tv)))
    rows.append(("det_hessian 100000×3×3", "matgrad", "jax.jit(vmap(hessian(det)))", t,
                 "jax", "≥ 5×", _rel(mine, np.asarray(jh(Aj)))))

    # 3. HVP of Σ log|det A| on SPD 100 000 × 8×8
    G = rng.standard_normal((100_000 // k, 8, 8))
    S = G @ np.swapaxes(G, -1, -2) + 8 * np.eye(8)
    W = rng.standard_normal(S.shape)
    St, Wt = torch.from_numpy(S), torch.from_numpy(W)

    def hvp(slogdet: Callable[[Any], Any]) -> Callable[[], Any]:
        grad = torch.func.grad(lambda X: slogdet(X)[1].sum())
        return lambda: torch.func.jvp(grad, (St,), (Wt,))[1]

    ours, theirs = hvp(mt.slogdet), hvp(torch.linalg.slogdet)
    diff = _rel(ours().numpy(), theirs().numpy())
    diff_plain = _rel(matgrad.logdet_hvp(S, W), theirs().numpy())
    t = _interleaved({"matgrad.torch": ours, "torch": theirs,
                      "matgrad.logdet_hvp": lambda: matgrad.logdet_hvp(S, W)}, args.rounds)
    rows.append(("slogdet HVP, SPD 100000×8×8", "matgrad.torch",
                 "torch.func.jvp(grad(slogdet))", t, "torch", "≥ 2×", diff))
    rows.append(("slogdet HVP, SPD 100000×8×8", "matgrad.logdet_hvp",
                 "torch.func.jvp(grad(slogdet))", t, "torch", "—", diff_plain))

    print(f"# second derivatives, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}, "
          f"PyTorch {torch.__version__}, JAX {jax.__version__}, {args.rounds} interleaved "
          f"rounds, backend {matgrad.get_backend(like=A).name}\n")
    print("| workload | matgrad s (IQR) | against | its s (IQR) | speed-up | target | met | "
          "result diff |")
    print("|---|---|---|---|---|---|---|---|")
    out = {}
    for label, mine_key, against, times, their_key, target, d in rows:
        q1, m, q3 = _quartiles(times[mine_key])
        p1, pm, p3 = _quartiles(times[their_key])
        ratio = pm / m
        if target.startswith("≤"):
            limit = float(target.split()[1].rstrip("×"))
            met = "yes" if m / pm <= limit else "**miss**"
            shown = f"{m / pm:.2f}× its time"
        elif target.startswith("≥"):
            limit = float(target.split()[1].rstrip("×"))
            met = "yes" if ratio >= limit else "**miss**"
            shown = f"{ratio:.2f}×"
        else:
            met, shown = "—", f"{ratio:.2f}×"
        print(f"| {label} | {m:.4g} ({q3 - q1:.2g}) | {against} | {pm:.4g} ({p3 - p1:.2g}) | "
              f"{shown} | {target} | {met} | {'—' if d != d else f'{d:.1e}'} |")
        out[f"{label} | {mine_key} vs {their_key}"] = {"matgrad": times[mine_key],
                                                      "against": times[their_key]}
    for note in notes:
        print(f"\n{note}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
