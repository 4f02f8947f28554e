"""Scale-out benchmark: det_grad on N × 3×3 matrices, one process against a
2-worker ``dask.distributed`` LocalCluster (worker processes on loopback).

    python asv_bench/dask_cluster.py [--n 10000000] [--workers 2]

Prints wall-clock times (data generated on the workers, results reduced to
a checksum so that nothing large travels back), their ratio, and the peak
resident memory of each worker process.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import dask.array as da
    from distributed import Client, LocalCluster

    import matgrad

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    n, chunk = args.n, max(1, args.n // (4 * args.workers))

    # one process: NumPy input, the default (auto) backend
    A = np.random.default_rng(0).standard_normal((n, 3, 3))
    matgrad.det_grad(A[:1000])  # warm-up / JIT
    t0 = time.perf_counter()
    ref = matgrad.det_grad(A).sum()
    single = time.perf_counter() - t0
    backend = matgrad.get_backend().name
    del A

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dA = da.random.default_rng(0).standard_normal((n, 3, 3), chunks=(chunk, 3, 3))
        dA = dA.persist()
        matgrad.det_grad(dA[:1000]).sum().compute()  # warm-up / JIT on the workers
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            total = matgrad.det_grad(dA).sum().compute()
            times.append(time.perf_counter() - t0)
        peaks = client.run(_peak_rss_mib)
    cluster_t = float(np.median(times))
    print(f"det_grad {n} x 3x3, float64 ({n * 72 / 2**20:.0f} MiB in, same out)")
    print(f"one process ({backend} backend):       {single:.3f} s  (checksum {ref:.6g})")
    print(f"LocalCluster, {args.workers} workers x 1 thread: {cluster_t:.3f} s  "
          f"(checksum {total:.6g}; data generated on the workers)")
    print(f"cluster / one process: {cluster_t / single:.2f}")
    for addr, mib in sorted(peaks.items()):
        print(f"peak RSS {addr}: {mib:.0f} MiB")


if __name__ == "__main__":
    main()
