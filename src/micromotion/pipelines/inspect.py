"""Inspect files: what a micromotion or a generator holds, and whether two networks are one.

``micromotion info FILE`` describes either kind; ``micromotion info A B`` compares two
generators — the check that settles whether two downloads (say NVIDIA's TensorFlow original
and a PyTorch re-release) are the same training run, which a direction depends on: a
direction is only meaningful in the W+ space of the network it was found in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from micromotion import hub
from micromotion.errors import CheckpointError, MicromotionError
from micromotion.networks.stylegan2 import Generator
from micromotion.subspace.micromotion import MICROMOTION_FORMAT
from micromotion.weights.generator import detect_format, load_generator
from micromotion.weights.micromotion import load_micromotion
from micromotion.weights.state import load_torch_file

#: Tensors compared when two networks differ: the mean latent, the first mapping layer and
#: the first noise constant — the ones that tell training runs apart at a glance.
COMPARED = ("mapping.w_avg", "mapping.fc0.weight", "synthesis.b4.conv1.noise_const")


def kind_of(spec: str | os.PathLike[str]) -> str:
    """``"generator"`` or ``"micromotion"``: what a file or zoo name holds.

    Raises:
        MicromotionError: For a name that is neither a file nor a zoo entry.
    """
    path = Path(spec)
    if not path.is_file():
        if hub.looks_like_path(spec) or isinstance(spec, os.PathLike):
            raise CheckpointError(f"{spec}: no such file")
        entry = hub.get(str(spec))
        return "generator" if entry.kind == "generator" else "micromotion"
    fmt = detect_format(path)
    if fmt == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
        return "micromotion" if meta.get("format") == MICROMOTION_FORMAT else "generator"
    if fmt == "torch":
        # The paper's d_latent files are a bare tensor; generators are dicts of them
        # (memory-mapped: a large checkpoint is not read whole to tell).
        obj = load_torch_file(path, what="a checkpoint", mmap=True)
        return "micromotion" if isinstance(obj, torch.Tensor) else "generator"
    return "generator"


def describe_generator(G: Generator, spec: str) -> dict[str, Any]:
    """Architecture, identity and source of a generator, for ``info``."""
    return {
        "kind": "generator",
        "spec": spec,
        "source": dict(G.source),
        "config": G.config.to_dict(),
        "num_ws": G.num_ws,
        "w_dim": G.w_dim,
        "fingerprint": G.fingerprint(),
        "w_avg_norm": float(G.w_avg.norm()),
        "parameters": sum(p.numel() for p in G.parameters()),
    }


def describe(spec: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``spec`` (a file or a zoo name) holds: a micromotion's or a generator's summary."""
    if kind_of(spec) == "micromotion":
        return {"kind": "micromotion", **load_micromotion(spec).summary()}
    return describe_generator(load_generator(spec), str(spec))


def compare_generators(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> dict[str, Any]:
    """Whether two files hold the same network; if not, where they differ most.

    Returns:
        ``same`` (identical fingerprints), ``same_architecture``, both descriptions, and for
        each of :data:`COMPARED` present in both with one shape, its largest absolute
        difference and where (flat index).
    """
    for spec in (a, b):
        if kind_of(spec) != "generator":
            raise MicromotionError(f"{spec}: a micromotion, not a generator; give two networks")
    Ga, Gb = load_generator(a), load_generator(b)
    report: dict[str, Any] = {
        "a": describe_generator(Ga, str(a)),
        "b": describe_generator(Gb, str(b)),
    }
    report["same"] = report["a"]["fingerprint"] == report["b"]["fingerprint"]
    report["same_architecture"] = Ga.config == Gb.config
    sa, sb = Ga.state_dict(), Gb.state_dict()
    diffs = []
    for name in COMPARED:
        if name in sa and name in sb and sa[name].shape == sb[name].shape:
            delta = (sa[name].float() - sb[name].float()).abs().reshape(-1)
            at = int(torch.argmax(delta))
            diffs.append({"tensor": name, "max_abs_diff": float(delta[at]), "at": at})
    report["differences"] = diffs
    return report


__all__ = ["COMPARED", "compare_generators", "describe", "describe_generator", "kind_of"]


def plot_file(spec: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Draw a micromotion file's per-layer norms and singular values as a PNG (``info --plot``).

    Raises:
        MicromotionError: For a generator, or an output that would replace the input.
    """
    from micromotion.pipelines.preview import plot_micromotion

    summary = describe(spec)
    if summary["kind"] != "micromotion":
        raise MicromotionError(f"{spec}: a generator; the plot shows a micromotion's layers")
    return plot_micromotion(summary, output, reads=[spec])
