"""Which direction estimate recovers a planted micromotion best?

Anchors are planted in W+ as ``w_i = w0 + t_i·d_true + noise + sparse outliers``, with
``t_i = linspace(0, 1, n)``, and a few anchors replaced by unrelated codes (outlier frames:
a failed inversion or a prompt that went astray). Each anchor set goes through
:func:`micromotion.subspace.decompose` (rank 4, uncentred, as in the paper) with robust PCA
(our default μ schedule), robust PCA with the paper code's fixed μ and stopping rule, or
plain truncated PCA, and the direction is read off with ``endpoints`` (the paper's
``L̂[last] − L̂[first]``), ``slope`` (least-squares slope × time span) or ``robust-slope``
(the same line by Tukey-weighted IRLS over anchors).

Scales: ``w0 ~ N(0, 1)`` per entry; each layer of ``d_true`` has norm 0.1–0.3 × that layer's
``‖w0‖``; Gaussian noise has per-entry std ``noise × rms(d_true)`` (so ``noise = 1`` puts as
much noise on each anchor as the whole motion); sparse outliers hit 5 % of the entries with
±U(2, 5); outlier frames (``--frames`` per cent of the anchors, at least one) are fresh
``N(0, 1)`` codes, placed at random, endpoints included.

Reported per setting, averaged over ``--trials`` seeds: cosine similarity of the recovered
direction with ``d_true`` (mean and worst trial) and the relative error ``‖d − d_true‖/‖d_true‖``.

Runs in ~50 s on 2 CPU cores (``--small``: ~3 s); almost all of it is robust PCA at n = 64.

``--speed`` times robust PCA itself instead, at 16, 100, 300 and 1000 anchors with one and two
torch threads, against the previous solver measured in the same run (``--repeat`` runs each,
best kept; ``--busy`` keeps another core busy meanwhile; ``--outliers`` adds 5 % sparse
outliers, robust PCA's reason to exist).

``--floor`` measures what is left: it records every call robust PCA makes to its full
eigensolver route (the iterations whose threshold cuts through a continuous run of singular
values, where no cheaper route is exact), replays exactly those calls on the same matrices
with one and two workers, and sets their time beside the whole solver's (default n: 300).

Usage:
    python benchmarks/subspace.py [--small] [--trials 2] [--anchors 11,32,64]
        [--noise 0.1,0.3,1.0] [--num-ws 18] [--w-dim 512] [--seed 0] [--threads 2]
    python benchmarks/subspace.py --speed [--anchors 16,100,300,1000] [--repeat 3] [--busy]
        [--outliers]
    python benchmarks/subspace.py --floor [--anchors 300] [--repeat 3] [--outliers]
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import mean
from typing import Any

import torch

from micromotion.subspace import decompose, direction_from

METHODS = ("endpoints", "slope", "robust-slope")
DECOMPS = {  # name -> decompose() keyword arguments
    "plain": {"robust": False},  # truncated SVD of the anchors
    "rpca": {"robust": True},  # robust PCA, our defaults
    "paper": {"robust": True, "rpca_kwargs": {"mu": "paper", "tol": "paper"}},  # their code's
}
CORRUPTIONS = ("none", "sparse", "sparse+frames")


@dataclass(frozen=True)
class Setting:
    n: int
    noise: float
    corruption: str


def plant(
    setting: Setting, *, num_ws: int, w_dim: int, frames_pct: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(anchors [n, num_ws, w_dim], d_true [num_ws, w_dim])``, float64."""
    n = setting.n
    f64 = torch.float64
    w0 = torch.randn(num_ws, w_dim, generator=gen, dtype=f64)
    d = torch.randn(num_ws, w_dim, generator=gen, dtype=f64)
    ratio = 0.1 + 0.2 * torch.rand(num_ws, 1, generator=gen, dtype=f64)
    d = d / d.norm(dim=1, keepdim=True) * w0.norm(dim=1, keepdim=True) * ratio
    t = torch.linspace(0, 1, n, dtype=f64)
    anchors = w0 + t[:, None, None] * d  # [n, num_ws, w_dim]
    rms_d = d.square().mean().sqrt()
    anchors = anchors + setting.noise * rms_d * torch.randn(anchors.shape, generator=gen, dtype=f64)
    if setting.corruption != "none":
        support = torch.rand(anchors.shape, generator=gen) < 0.05
        sign = torch.randint(0, 2, anchors.shape, generator=gen).to(f64) * 2 - 1
        size = 2 + 3 * torch.rand(anchors.shape, generator=gen, dtype=f64)
        anchors = anchors + support * sign * size
    if setting.corruption == "sparse+frames":
        count = max(1, round(n * frames_pct / 100))
        bad = torch.randperm(n, generator=gen)[:count]
        anchors[bad] = torch.randn(count, num_ws, w_dim, generator=gen, dtype=f64)
    return anchors, d


def score(d: torch.Tensor, d_true: torch.Tensor) -> tuple[float, float]:
    a, b = d.flatten().double(), d_true.flatten().double()
    cos = float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))
    return cos, float((a - b).norm() / b.norm())


SHORT = {"endpoints": "endp", "slope": "slope", "robust-slope": "rslope"}


def run(args: argparse.Namespace) -> None:
    settings = [
        Setting(n, noise, corruption)
        for n in args.anchors
        for noise in args.noise
        for corruption in CORRUPTIONS
    ]
    combos = [(dec, m) for dec in DECOMPS for m in METHODS]
    cos: dict[Setting, dict[tuple[str, str], list[float]]] = {}
    err: dict[Setting, dict[tuple[str, str], list[float]]] = {}
    start = time.perf_counter()
    for i, s in enumerate(settings):
        gen = torch.Generator().manual_seed(args.seed * 100_003 + i)
        cos[s] = {c: [] for c in combos}
        err[s] = {c: [] for c in combos}
        for _ in range(args.trials):
            anchors, d_true = plant(
                s, num_ws=args.num_ws, w_dim=args.w_dim, frames_pct=args.frames, gen=gen
            )
            for dec, kwargs in DECOMPS.items():
                denoised = decompose(anchors, rank=args.rank, **kwargs).denoised
                for m in METHODS:
                    c, e = score(direction_from(denoised, method=m), d_true)
                    cos[s][dec, m].append(c)
                    err[s][dec, m].append(e)
    elapsed = time.perf_counter() - start

    print(
        f"W+ {args.num_ws}x{args.w_dim}, rank {args.rank}, uncentred, {args.trials} trials per "
        f"setting, seed {args.seed}, outlier frames {args.frames:g}% (>= 1)"
    )
    head = f"{'n':>3} {'noise':>5} {'corruption':<13}"
    cols = "".join(f" {dec + '/' + SHORT[m]:>13}" for dec, m in combos)
    rows = [
        ("cosine with d_true, mean (worst trial)", cos, lambda v: f"{mean(v):.3f}({min(v):.2f})"),
        ("relative error |d - d_true| / |d_true|, mean", err, lambda v: f"{mean(v):.3f}"),
    ]
    for title, table, cell in rows:
        print(f"\n{title}")
        print(head + cols)
        print("-" * len(head + cols))
        for s in settings:
            line = "".join(f" {cell(table[s][c]):>13}" for c in combos)
            print(f"{s.n:>3} {s.noise:>5.2f} {s.corruption:<13}{line}")
        print("-" * len(head + cols))
        line = "".join(f" {mean([mean(table[s][c]) for s in settings]):>13.3f}" for c in combos)
        print(f"{'mean over settings':<23}{line}")
    print(f"\n({elapsed:.1f} s)")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _speed_anchors(args: argparse.Namespace, n: int) -> torch.Tensor:
    """``[num_ws, n, w_dim]`` float64 anchors for the timings: rank 4 + noise (+ outliers)."""
    g = torch.Generator().manual_seed(args.seed + n)
    f64 = torch.float64  # the solver's own precision, so |dL| is the solvers' difference
    D = torch.randn(args.num_ws, n, 4, generator=g, dtype=f64) @ torch.randn(
        args.num_ws, 4, args.w_dim, generator=g, dtype=f64
    ) + 0.01 * torch.randn(args.num_ws, n, args.w_dim, generator=g, dtype=f64)
    if args.outliers:  # 5 % of the entries hit by ±U(2, 5), as in the accuracy runs
        shape = D.shape
        hit = torch.rand(shape, generator=g) < 0.05
        sign = torch.randint(0, 2, shape, generator=g).to(f64) * 2 - 1
        D = D + hit * sign * (2 + 3 * torch.rand(shape, generator=g, dtype=f64))
    return D


def floor(args: argparse.Namespace) -> None:
    """The full-eigensolver calls of one robust PCA run, replayed alone, against the whole run.

    One single-threaded run records the inputs of every call to the full route
    (``rpca._svt_full``: the Gram matrix, its whole eigendecomposition and the reconstruction).
    Those calls are then replayed on the same matrices over one and two workers of one
    intra-op thread each, and timed (best of ``--repeat``). Each call's matrices are split
    evenly between the workers, which is at least as balanced as robust PCA's own split (by
    layer, once, for the whole run): the replay can only be faster than the solver's share.
    The replay is what the exact full route costs by itself in this run: no change outside
    that route (the block route, the elementwise steps, the thread split) can bring the
    solver below it; only a faster eigensolver, or fewer iterations that need one, could.
    """
    from concurrent.futures import ThreadPoolExecutor
    from unittest import mock

    from micromotion.core.threads import torch_threads
    from micromotion.subspace import robust_pca, rpca

    full = rpca._svt_full
    print(
        f"robust PCA of [{args.num_ws}, n, {args.w_dim}] planted anchors (rank 4 + noise"
        f"{' + 5 % sparse outliers' if args.outliers else ''}): the whole solver against its "
        f"full-eigensolver calls replayed alone, best of {args.repeat}"
    )
    print(
        f"{'n':>6} {'threads':>7} {'solver s':>8} {'full calls s':>12} {'share':>6} "
        f"{'calls':>5} {'matrices':>8} {'iters':>5}"
    )
    for n in args.anchors:
        D = _speed_anchors(args, n)
        calls: list[tuple[torch.Tensor, torch.Tensor]] = []  # (M [b, m, n], tau [b, 1, 1])
        record = functools.partial(_record, calls, full)
        with torch_threads(1), mock.patch.object(rpca, "_svt_full", record):
            iterations = int(robust_pca(D).iterations.max())
        matrices = sum(M.shape[0] for M, _ in calls)
        for threads in (1, 2):
            t_solver, t_full = math.inf, math.inf
            with torch_threads(threads):
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    robust_pca(D)
                    t_solver = min(t_solver, time.perf_counter() - t)
                    t = time.perf_counter()
                    share = functools.partial(_replay, calls, full, workers=threads)
                    with torch_threads(1), ThreadPoolExecutor(threads) as pool:
                        list(pool.map(share, range(threads)))
                    t_full = min(t_full, time.perf_counter() - t)
            print(f"{n:>6} {threads:>7} {t_solver:>8.2f} {t_full:>12.2f} "
                  f"{t_full / t_solver:>6.0%} {len(calls):>5} {matrices:>8} {iterations:>5}",
                  flush=True)  # fmt: skip


def _record(
    calls: list[tuple[torch.Tensor, torch.Tensor]],
    full: Callable[..., Any],
    M: torch.Tensor,
    tau: torch.Tensor,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Stand-in for ``rpca._svt_full``: keeps a copy of its inputs, then calls it."""
    calls.append((M.clone(), tau.clone()))
    return full(M, tau, *args, **kwargs)


def _replay(
    calls: list[tuple[torch.Tensor, torch.Tensor]],
    full: Callable[..., Any],
    part: int,
    workers: int,
) -> None:
    """Run worker ``part``'s even share (of ``workers``) of every recorded call."""
    torch.set_num_threads(1)  # per calling thread, as robust PCA's workers do
    for M, tau in calls:
        Mi, ti = torch.tensor_split(M, workers)[part], torch.tensor_split(tau, workers)[part]
        if Mi.shape[0]:
            full(Mi, ti)


def _previous_robust_pca(D: torch.Tensor) -> torch.Tensor:
    """The baseline: the solver as it was before the fused loop, default settings only.

    A copy of the former ``robust_pca(D).L`` (inexact ALM with Lin, Chen & Ma's schedule, the
    Gram-matrix SVT with every eigenvector, a separate shrinkage, residual and dual step, and
    the batch split over single-threaded workers), kept here so every run measures both.
    """
    from concurrent.futures import ThreadPoolExecutor

    from micromotion.core.threads import torch_threads

    def svt(M: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:  # M [b, m, n], tau [b, 1, 1]
        wide = M.shape[-2] <= M.shape[-1]
        lam, U = torch.linalg.eigh(M @ M.mT if wide else M.mT @ M)
        s = lam.clamp_min(0.0).sqrt()
        keep = (s - tau[:, :, 0]).clamp_min(0.0) / s.clamp_min(torch.finfo(s.dtype).tiny)
        if wide:
            return (U * keep[:, None, :]) @ (U.mT @ M)
        return ((M @ U) * keep[:, None, :]) @ U.mT

    def pcp(X: torch.Tensor) -> torch.Tensor:  # X [B, m, n] float64
        torch.set_num_threads(1)
        B, m, n = X.shape
        lam = 1.0 / max(m, n) ** 0.5
        spec = torch.linalg.matrix_norm(X, 2)  # [B]
        mu, fro = 1.25 / spec, torch.linalg.matrix_norm(X, "fro")
        cap = mu * 1e7
        Y = X / torch.maximum(spec, X.abs().amax(dim=(-2, -1)) / lam)[:, None, None]
        L, S = torch.zeros_like(X), torch.zeros_like(X)
        active = torch.ones(B, dtype=torch.bool)
        for _ in range(1000):
            idx = active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            sel: torch.Tensor | slice = slice(None) if idx.numel() == B else idx
            Xa, mua = X[sel], mu[sel][:, None, None]
            Yd = Y[sel] / mua
            La = svt(Xa - S[sel] + Yd, 1.0 / mua)
            T = Xa - La + Yd
            Sa = torch.sign(T) * (T.abs() - lam / mua).clamp_min(0.0)
            Ra = Xa - La - Sa
            L[sel], S[sel], Y[sel] = La, Sa, mua * (Yd + Ra)
            res = torch.linalg.matrix_norm(Ra, "fro") / fro[sel]
            mu[sel] = torch.minimum(mu[sel] * 1.5, cap[sel])
            active[idx[res < 1e-7]] = False
        return L

    X = D.double()
    workers = max(1, min(torch.get_num_threads(), X.shape[0]))
    with torch_threads(1), ThreadPoolExecutor(workers) as pool:
        return torch.cat(list(pool.map(pcp, torch.tensor_split(X, workers))))


def speed(args: argparse.Namespace) -> None:
    """Seconds of robust PCA on ``[num_ws, n, w_dim]`` anchors, 1 and 2 threads, vs baseline.

    The baseline, measured in the same run on the same matrices, is the previous solver
    (:func:`_previous_robust_pca`). Each time is the best of ``--repeat`` runs: the machine
    may be shared, and the minimum is the least disturbed. ``--busy`` keeps one other core
    busy with a spinning process while timing.
    """
    import subprocess
    import sys

    from micromotion.core.threads import torch_threads
    from micromotion.subspace import robust_pca

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        print(
            f"robust PCA of [{args.num_ws}, n, {args.w_dim}] planted anchors (rank 4 + noise"
            f"{' + 5 % sparse outliers' if args.outliers else ''}), "
            f"best of {args.repeat}{', one other core kept busy' if busy else ''}"
        )
        print(
            f"{'n':>6} {'threads':>7} {'previous s':>10} {'ours s':>8} {'ratio':>6} "
            f"{'max |dL|':>9} {'/ max |L|':>9} {'iters':>5}"
        )
        for n in args.anchors:
            D = _speed_anchors(args, n)
            for threads in (1, 2):
                t_base, t_ours = math.inf, math.inf
                with torch_threads(threads):
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        base = _previous_robust_pca(D)
                        t_base = min(t_base, time.perf_counter() - t)
                        t = time.perf_counter()
                        ours = robust_pca(D)
                        t_ours = min(t_ours, time.perf_counter() - t)
                diff = float((ours.L - base).abs().max())
                rel = diff / float(base.abs().max())
                print(f"{n:>6} {threads:>7} {t_base:>10.2f} {t_ours:>8.2f} "
                      f"{t_base / t_ours:>6.2f} {diff:>9.1e} {rel:>9.1e} "
                      f"{int(ours.iterations.max()):>5}", flush=True)  # fmt: skip
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchors", type=_ints, default=[11, 32, 64], help="anchor counts n")
    parser.add_argument("--noise", type=_floats, default=[0.1, 0.3, 1.0], help="noise levels")
    parser.add_argument("--frames", type=float, default=10.0, help="%% of outlier frames")
    parser.add_argument("--trials", type=int, default=2, help="seeds per setting")
    parser.add_argument("--rank", type=int, default=4, help="reconstruction rank (paper: 4)")
    parser.add_argument("--num-ws", type=int, default=18, help="W+ entries")
    parser.add_argument("--w-dim", type=int, default=512, help="W width")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--small", action="store_true", help="quick run: W+ 6x64, n in {11, 32}")
    parser.add_argument(
        "--speed", action="store_true", help="time robust PCA instead (default n: 16,100,300,1000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="--speed, --floor: best of this many runs"
    )
    parser.add_argument("--busy", action="store_true", help="--speed: keep another core busy")
    parser.add_argument(
        "--outliers",
        action="store_true",
        help="--speed, --floor: add 5 %% sparse outliers to the anchors",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="time the full-eigensolver calls alone against the whole solver (default n: 300)",
    )
    args = parser.parse_args(argv)
    if args.floor:
        if args.anchors == [11, 32, 64]:
            args.anchors = [300]
        floor(args)
        return
    if args.speed:
        if args.anchors == [11, 32, 64]:
            args.anchors = [16, 100, 300, 1000]
        speed(args)
        return
    if args.small:
        args.num_ws, args.w_dim, args.anchors = 6, 64, [11, 32]
    torch.set_num_threads(args.threads)
    run(args)


if __name__ == "__main__":
    main()
