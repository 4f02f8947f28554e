"""Dask backend: laziness, inner backend carried by name, real cluster."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import matgrad

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

pytestmark = pytest.mark.skipif(
    not any(b.name == "dask" and b.available for b in matgrad.list_backends()),
    reason="dask backend unavailable",
)


def _boom() -> np.ndarray:
    raise RuntimeError("computed too early")


def test_results_are_lazy_dask_arrays() -> None:
    poisoned = da.from_delayed(dask.delayed(_boom)(), shape=(4, 3, 3), dtype=float)
    outs = [
        matgrad.det_grad(poisoned),
        matgrad.logdet_grad(poisoned),
        matgrad.frobenius_grad(poisoned),
        matgrad.charpoly(poisoned, 0.5),
        matgrad.bilinear_grad(poisoned[:, 0], poisoned[:, 1]),
    ]
    assert all(isinstance(o, da.Array) for o in outs)
    p, dp = matgrad.charpoly_deriv(poisoned, 0.5, return_value=True)
    assert isinstance(p, da.Array) and isinstance(dp, da.Array)
    assert matgrad.det_grad(poisoned).shape == (4, 3, 3)
    with pytest.raises(RuntimeError, match="computed too early"):
        outs[0].compute()


def test_validation_happens_when_the_graph_is_built() -> None:
    with pytest.raises(ValueError, match=r"square .*\(5, 2, 3\)"):
        matgrad.det_grad(da.ones((5, 2, 3)))
    with pytest.raises(TypeError, match="dtype"):
        matgrad.det_grad(da.from_array(np.array([[["a"]]])))
    assert matgrad.det_grad(da.ones((2, 3, 3), dtype=np.float32)).dtype == np.float32
    assert matgrad.det_grad(da.ones((2, 3, 3), dtype=np.int64)).dtype == np.float64


def _spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"numpy": 0, "numba": 0}
    import matgrad_numpy

    orig_np = matgrad_numpy.NumpyBackend.det_grad

    def np_det(self: object, A: np.ndarray) -> np.ndarray:
        calls["numpy"] += 1
        return orig_np(self, A)  # type: ignore[arg-type]

    monkeypatch.setattr(matgrad_numpy.NumpyBackend, "det_grad", np_det)
    try:
        import matgrad_numba

        orig_nb = matgrad_numba.NumbaBackend.det_grad

        def nb_det(self: object, A: np.ndarray) -> np.ndarray:
            calls["numba"] += 1
            return orig_nb(self, A)  # type: ignore[arg-type]

        monkeypatch.setattr(matgrad_numba.NumbaBackend, "det_grad", nb_det)
    except ImportError:
        pass
    return calls


def test_inner_backend_resolved_at_build_time_and_carried_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    A = np.random.default_rng(0).standard_normal((12, 4, 4))
    dA = da.from_array(A, chunks=(5, 4, 4))
    calls = _spy(monkeypatch)
    with matgrad.use_backend("numpy"):
        lazy = matgrad.det_grad(dA)
    # computed outside the context, on Dask's worker threads
    got = lazy.compute(scheduler="threads")
    np.testing.assert_allclose(got, matgrad.det_grad(A, backend="numpy"), rtol=1e-14)
    assert calls["numpy"] == 3 + 1 and calls["numba"] == 0  # 3 blocks + the reference
    if any(b.name == "numba" and b.available for b in matgrad.list_backends()):
        calls["numpy"] = 0
        matgrad.det_grad(dA, backend="numba").compute()
        assert calls["numba"] == 3 and calls["numpy"] == 0


def test_selecting_dask_itself_falls_back_for_the_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dA = da.from_array(np.eye(3)[None].repeat(4, 0), chunks=(2, 3, 3))
    monkeypatch.setenv("MATGRAD_BACKEND", "dask")
    np.testing.assert_array_equal(matgrad.det_grad(dA).compute(), np.eye(3)[None].repeat(4, 0))
    np.testing.assert_array_equal(matgrad.det_grad(dA, backend="dask").compute(),
                                  np.eye(3)[None].repeat(4, 0))
    assert matgrad.get_backend(like=dA).name == "dask"
    with matgrad.use_backend("auto"):
        auto = matgrad.get_backend().name
    assert matgrad.get_backend(like=dA, inner=True).name == auto  # the blocks fall back
    assert matgrad.get_backend(inner=True).name == auto
    with matgrad.use_backend("numpy"):
        assert matgrad.get_backend(like=dA, inner=True).name == "numpy"


def test_orchestrate_gets_the_validated_call_as_one_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    import matgrad_dask

    seen: list[matgrad.OrchestrationRequest] = []
    orchestrate = matgrad_dask.DaskBackend.orchestrate

    def spy(self: matgrad_dask.DaskBackend, request: matgrad.OrchestrationRequest) -> object:
        seen.append(request)
        return orchestrate(self, request)

    monkeypatch.setattr(matgrad_dask.DaskBackend, "orchestrate", spy)
    A = np.eye(3, dtype=np.float32)[None].repeat(4, 0)
    dA = da.from_array(A, chunks=(2, 3, 3))
    with matgrad.use_backend("numpy"):
        det, C = matgrad.det_grad(dA, return_value=True)
        p = matgrad.charpoly(dA, 2)
    np.testing.assert_array_equal(C.compute(), A)
    np.testing.assert_array_equal(det.compute(), np.ones(4, np.float32))
    np.testing.assert_array_equal(p.compute(), np.ones(4, np.float32))
    d, c = seen
    assert isinstance(d, matgrad.OrchestrationRequest)
    assert (d.op, d.method, d.inner, d.dtype) == ("det_grad", "det_value_grad", "numpy",
                                                  np.float32)
    assert dict(d.options) == {"return_value": True} and dict(d.inputs) == {"A": dA}
    assert (c.op, c.method, c.inner, c.dtype) == ("charpoly", "charpoly_deriv", "numpy",
                                                  np.float32)
    assert list(c.inputs) == ["A", "x"] and c.inputs["x"] == 2 and not c.options
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.inner = "numba"  # type: ignore[misc]
    with pytest.raises(TypeError):
        d.inputs["A"] = A  # type: ignore[index]


def test_frobenius_split_matrix_is_a_global_safe_reduction() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 40, 30))
    X[0] *= 1e300  # ‖X‖ overflows unscaled
    X[1] *= 1e-300
    dX = da.from_array(X, chunks=(1, 7, 11))  # matrix axes split unevenly
    got = matgrad.frobenius_grad(dX).compute()
    for b in range(2):
        ref = X[b] / 2.0 ** 1000 if b == 0 else X[b] * 2.0 ** 1000
        np.testing.assert_allclose(got[b], ref / np.linalg.norm(ref), rtol=4e-15, atol=0)
    Z = da.zeros((3, 8, 8), chunks=(2, 4, 4))
    np.testing.assert_array_equal(matgrad.frobenius_grad(Z).compute(), 0)


def test_charpoly_with_chunked_points() -> None:
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 1, 5, 5))
    x = rng.standard_normal((3, 40))
    p, dp = matgrad.charpoly_deriv(da.from_array(A, chunks=(2, 1, 3, 5)),
                                   da.from_array(x, chunks=(2, 7)), return_value=True,
                                   backend="numpy")
    rp, rdp = matgrad.charpoly_deriv(A, x, return_value=True, backend="numpy")
    np.testing.assert_allclose(p.compute(), rp, rtol=1e-13)
    np.testing.assert_allclose(dp.compute(), rdp, rtol=1e-13)


@pytest.mark.slow
def test_local_cluster_det_grad_and_frobenius() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.nthreads()) == 2
        # data made on the workers (no large graphs), then fetched for references
        rng = da.random.default_rng(3)
        dA = rng.standard_normal((1_000_000, 3, 3), chunks=(250_000, 3, 3)).persist()
        A = dA.compute()
        C = matgrad.det_grad(dA).compute()
        np.testing.assert_array_equal(C, matgrad.det_grad(A, backend="numpy"))
        dX = rng.standard_normal((2000, 2000), chunks=(500, 500)).persist()  # a 4×4 grid
        X = dX.compute()
        G = matgrad.frobenius_grad(dX).compute()
        np.testing.assert_allclose(G, matgrad.frobenius_grad(X, backend="numpy"),
                                   rtol=1e-13, atol=0)
        assert "cluster" in matgrad.get_backend(like=dA).device


def test_charpoly_one_reduction_per_matrix_with_chunked_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """3 matrices × 40 points in 6 point chunks: 3 Hessenberg reductions in all."""
    from matgrad.kernels import charpoly as _charpoly

    reduced = {"matrices": 0}
    depth = {"d": 0}
    orig = _charpoly.hessenberg_batched

    def counting(A: np.ndarray) -> np.ndarray:
        if depth["d"] == 0:
            reduced["matrices"] += int((~_charpoly.is_hessenberg(A)).sum())
        depth["d"] += 1
        try:
            return orig(A)
        finally:
            depth["d"] -= 1

    monkeypatch.setattr(_charpoly, "hessenberg_batched", counting)
    rng = np.random.default_rng(5)
    A = rng.standard_normal((3, 1, 6, 6))
    x = rng.standard_normal((3, 40))
    dp = matgrad.charpoly_deriv(da.from_array(A, chunks=(2, 1, 6, 6)),
                                da.from_array(x, chunks=(2, 7)), backend="numpy")
    got = dp.compute(scheduler="sync")
    assert reduced["matrices"] == 3
    np.testing.assert_allclose(got, matgrad.charpoly_deriv(A, x, backend="numpy"),
                               rtol=1e-12, atol=1e-12 * np.abs(got).max())


# -- unknown chunk sizes (NaN) and empty inputs ------------------------------------

def _flat(r: object) -> list[np.ndarray]:
    """The arrays of a result (nested tuples flattened), computed."""
    if isinstance(r, tuple):
        return [a for part in r for a in _flat(part)]
    return [np.asarray(dask.compute(r)[0])]


def _same(got: object, ref: object, exact: bool = True) -> None:
    g, r = _flat(got), _flat(ref)
    assert len(g) == len(r)
    for a, b in zip(g, r, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        if exact:
            np.testing.assert_array_equal(a, b)
        else:  # another summation order or Hessenberg reduction: rounding only
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14 * np.abs(b).max(initial=0))


def _selected(A: np.ndarray, chunks: object) -> tuple[Any, np.ndarray]:
    """A boolean selection along the batch axis (unknown chunk sizes) that
    empties the second batch chunk entirely, and the NumPy rows it keeps."""
    keep = np.ones(A.shape[0], bool)
    keep[2:4] = False  # with batch chunks of 2: the second block keeps nothing
    keep[5] = False
    dA = da.from_array(A, chunks=chunks)
    mask = da.from_array(keep, chunks=2)
    sel = dA[mask]
    assert np.isnan(sel.shape[0])  # really unknown
    return sel, A[keep]


@pytest.mark.parametrize("chunks", [(2, 3, 3), (2, 2, 1)], ids=["whole", "split"])
def test_unknown_batch_chunk_sizes_every_operation(chunks: tuple[int, ...]) -> None:
    """Each selected slot gives the NumPy backend's bits on that slot (the
    Frobenius norm of a matrix split over blocks sums in another order)."""
    rng = np.random.default_rng(11)
    A = rng.standard_normal((7, 3, 3))
    dA, An = _selected(A, chunks)
    np_: dict[str, Any] = {"backend": "numpy"}
    whole = chunks[1:] == (3, 3)
    cases = [
        (matgrad.det_grad(dA, **np_), matgrad.det_grad(An, **np_), True),
        (matgrad.det_grad(dA, return_value=True, **np_),
         matgrad.det_grad(An, return_value=True, **np_), True),
        (matgrad.logdet_grad(dA, **np_), matgrad.logdet_grad(An, **np_), True),
        (matgrad.logdet_grad(dA, return_value=True, **np_),
         matgrad.logdet_grad(An, return_value=True, **np_), True),
        (matgrad.frobenius_grad(dA, **np_), matgrad.frobenius_grad(An, **np_), whole),
        (matgrad.frobenius_grad(dA, return_value=True, **np_),
         matgrad.frobenius_grad(An, return_value=True, **np_), whole),
        (matgrad.charpoly(dA, 0.5, **np_), matgrad.charpoly(An, 0.5, **np_), True),
        (matgrad.charpoly_deriv(dA, np.array(0.25), return_value=True, **np_),
         matgrad.charpoly_deriv(An, np.array(0.25), return_value=True, **np_), True),
        # both vectors with the same unknown batch; one against a vector
        # without batch axes, and against a batch axis of size 1
        (matgrad.bilinear_grad(dA[:, 0], dA[:, 1], **np_),
         matgrad.bilinear_grad(An[:, 0], An[:, 1], **np_), True),
        (matgrad.bilinear_grad(dA[:, 0], np.arange(4.0), **np_),
         matgrad.bilinear_grad(An[:, 0], np.arange(4.0), **np_), True),
        (matgrad.bilinear_grad(np.ones((1, 2)), dA[:, 2], **np_),
         matgrad.bilinear_grad(np.ones((1, 2)), An[:, 2], **np_), True),
    ]
    for got, ref, exact in cases:
        _same(got, ref, exact)


def test_unknown_chunk_sizes_of_points_and_vectors() -> None:
    rng = np.random.default_rng(12)
    A = rng.standard_normal((3, 1, 4, 4))
    x = rng.standard_normal(9)
    dx = da.from_array(x, chunks=4)
    sel = dx[dx > -0.3]
    got = matgrad.charpoly_deriv(da.from_array(A, chunks=(2, 1, 4, 4)), sel,
                                 return_value=True, backend="numpy")
    assert np.isnan(got[0].shape[-1])
    ref = matgrad.charpoly_deriv(A, x[x > -0.3], return_value=True, backend="numpy")
    _same(got, ref, exact=False)  # the Dask graph reduces 4×4 matrices itself
    v = da.from_array(np.arange(6.0), chunks=4)
    _same(matgrad.bilinear_grad(v[v > 1.5], v[v < 4.5], backend="numpy"),
          matgrad.bilinear_grad(np.arange(2.0, 6.0), np.arange(5.0), backend="numpy"))


def test_unknown_matrix_axes() -> None:
    """Frobenius needs no square matrix: computed, whole or split blocks,
    with the norm.  The square operations cannot check their input: a clear
    ValueError naming compute_chunk_sizes."""
    rng = np.random.default_rng(13)
    X = rng.standard_normal((4, 3, 5))
    for chunks in [(2, 3, 5), (2, 2, 2)]:
        dX = da.from_array(X, chunks=chunks)
        cols = dX[:, :, da.from_array(np.ones(5, bool), chunks=chunks[2])]
        assert np.isnan(cols.shape[-1])
        _same(matgrad.frobenius_grad(cols, return_value=True, backend="numpy"),
              matgrad.frobenius_grad(X, return_value=True, backend="numpy"), exact=False)
        _same(matgrad.frobenius_grad(cols, backend="numpy"),
              matgrad.frobenius_grad(X, backend="numpy"), exact=False)
    dA = da.from_array(rng.standard_normal((4, 3, 3)), chunks=2)
    square = dA[:, :, da.from_array(np.ones(3, bool), chunks=2)]
    for f in (lambda: matgrad.det_grad(square), lambda: matgrad.logdet_grad(square),
              lambda: matgrad.charpoly(square, 1.0),
              lambda: matgrad.det_grad(square, return_value=True)):
        with pytest.raises(ValueError, match=r"unknown size \(nan\).*compute_chunk_sizes"):
            f()


def test_unknown_batch_against_a_known_batch_is_a_clear_error() -> None:
    dA = da.from_array(np.ones((4, 3, 3)), chunks=2)
    sel = dA[dA[:, 0, 0] > 0]
    with pytest.raises(ValueError, match=r"unknown size \(nan\).*size 4.*compute_chunk_sizes"):
        matgrad.charpoly(sel, np.ones(4))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        matgrad.bilinear_grad(sel[:, 0], np.ones((4, 3)))
    with pytest.raises(ValueError, match="do not broadcast"):  # known sizes still checked
        pairs = da.ones((2, 4, 3, 3), chunks=2)
        matgrad.charpoly(pairs[:, pairs[0, :, 0, 0] > 0], np.ones((3, 1)))
    # nothing was computed to find that out: a poisoned source stays lazy
    poisoned = da.from_delayed(dask.delayed(_boom)(), shape=(4, 3, 3), dtype=float)
    lazy = matgrad.det_grad(poisoned[poisoned[:, 0, 0] > 0])
    assert isinstance(lazy, da.Array) and np.isnan(lazy.shape[0])


_EMPTY_CASES = [
    ("det_grad", (2, 0, 0)), ("det_grad", (0, 3, 3)), ("det_grad", (0, 0, 0)),
    ("logdet_grad", (2, 0, 0)), ("logdet_grad", (0, 3, 3)), ("logdet_grad", (0, 0, 0)),
    ("frobenius_grad", (2, 0, 0)), ("frobenius_grad", (0, 3, 3)),
    ("frobenius_grad", (2, 0, 3)), ("frobenius_grad", (2, 3, 0)), ("frobenius_grad", (0, 2, 3)),
    ("charpoly", (2, 0, 0)), ("charpoly", (0, 3, 3)), ("charpoly", (0, 0, 0)),
    ("charpoly_deriv", (2, 0, 0)), ("charpoly_deriv", (0, 3, 3)),
    ("bilinear_grad", (0, 3)), ("bilinear_grad", (2, 0)),
]


@pytest.mark.parametrize("chunks", ["auto", 1])
@pytest.mark.parametrize(("op", "shape"), _EMPTY_CASES)
def test_empty_inputs_match_numpy(op: str, shape: tuple[int, ...], chunks: object) -> None:
    """0×0 matrices and empty batches: the NumPy backend's shapes, dtypes and
    values (det 1, log|det| 0, norm 0, p 1, p′ 0), with every chunking."""
    f = getattr(matgrad, op)
    A = np.zeros(shape)
    if op == "bilinear_grad":
        y = np.ones((shape[0], 2))
        _same(f(da.from_array(A, chunks=chunks), da.from_array(y, chunks=chunks)),
              f(A, y, backend="numpy"))
        return
    if op.startswith("charpoly"):
        rv = {"return_value": True} if op == "charpoly_deriv" else {}
        _same(f(da.from_array(A, chunks=chunks), 0.5, **rv), f(A, 0.5, backend="numpy", **rv))
        pts = np.ones((shape[0], 2))
        _same(f(da.from_array(A[:, None], chunks=chunks), da.from_array(pts, chunks=chunks), **rv),
              f(A[:, None], pts, backend="numpy", **rv))
        return
    dA = da.from_array(A, chunks=chunks)
    _same(f(dA), f(A, backend="numpy"))
    _same(f(dA, return_value=True), f(A, return_value=True, backend="numpy"))


def test_det_of_empty_matrices_with_value() -> None:
    """The case reported: 0×0 matrices have det 1 and an empty cofactor."""
    det, C = matgrad.det_grad(da.zeros((2, 0, 0)), return_value=True)
    np.testing.assert_array_equal(det.compute(), [1.0, 1.0])
    assert C.compute().shape == (2, 0, 0)
