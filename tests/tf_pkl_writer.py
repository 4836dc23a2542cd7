"""Write tiny pickles laid out like NVIDIA's TensorFlow StyleGAN2 ``(G, D, Gs)`` (a test helper).

A TensorFlow-era network pickles as an instance of ``dnnlib.tflib.network.Network`` whose state
is a plain dict: ``version``, ``name``, ``static_kwargs``, ``components`` (name → network),
``build_module_src`` (the Python source TensorFlow's loader executes), ``build_func_name``
and ``variables`` ((name, numpy array) pairs, 0-d values as numpy scalars). This module writes
that layout from one of our generators, by the inverse of the documented conversion rules,
with our own stand-in class; nothing here imports NVIDIA's or TensorFlow's code.
"""

from __future__ import annotations

import io
import math
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from micromotion.networks.stylegan2 import Generator

#: What our pickles embed as network source: a reader that ran it would leave this file.
CANARY_SRC = "open('TF_PICKLE_SOURCE_WAS_RUN', 'w').write('executed')\n"


def _network_class() -> type:
    """A class that pickles under the global name ``dnnlib.tflib.network.Network``."""
    module = sys.modules.get("dnnlib.tflib.network")
    if module is None:
        for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
            sys.modules.setdefault(name, types.ModuleType(name))
        module = sys.modules["dnnlib.tflib.network"]

        class Network:
            def __init__(self, state: dict[str, Any]) -> None:
                self._state = state

            def __getstate__(self) -> dict[str, Any]:
                return self._state

        Network.__module__ = "dnnlib.tflib.network"
        Network.__qualname__ = "Network"
        module.Network = Network  # type: ignore[attr-defined]
    return module.Network  # type: ignore[attr-defined]


def network(
    name: str,
    func: str,
    variables: dict[str, Any],
    *,
    components: dict[str, Any] | None = None,
    static_kwargs: dict[str, Any] | None = None,
    version: int = 4,
    source: str = CANARY_SRC,
) -> Any:
    """One stand-in TF network with the state dict the real class pickles."""
    return _network_class()(
        {
            "version": version,
            "name": name,
            "static_kwargs": dict(static_kwargs or {}),
            "components": dict(components or {}),
            "build_module_src": source,
            "build_func_name": func,
            "variables": list(variables.items()),
        }
    )


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().float().numpy().copy()


def _layer(G: Generator, ours: str, tf: str, *, flip: bool = False) -> dict[str, Any]:
    sd = G.state_dict()
    w = _np(sd[f"{ours}.weight"]).transpose(2, 3, 1, 0)  # [out, in, kh, kw] → [kh, kw, in, out]
    if flip:
        w = w[::-1, ::-1]
    out = {
        f"{tf}/weight": np.ascontiguousarray(w),
        f"{tf}/bias": _np(sd[f"{ours}.bias"]),
        f"{tf}/mod_weight": np.ascontiguousarray(_np(sd[f"{ours}.affine.weight"]).T),
        f"{tf}/mod_bias": _np(sd[f"{ours}.affine.bias"]) - 1,
    }
    if f"{ours}.noise_strength" in sd:
        out[f"{tf}/noise_strength"] = np.float32(_np(sd[f"{ours}.noise_strength"]).reshape(()))
    return out


def tf_networks(
    G: Generator, *, synthesis_func: str = "G_synthesis_stylegan2", **gs_kwargs: Any
) -> tuple[Any, Any, Any]:
    """``(G, D, Gs)`` stand-ins for ``G`` (G and D are small dummies; Gs is ``G``)."""
    sd = G.state_dict()
    mapping = {}
    for i in range(G.config.mapping_layers):
        mapping[f"Dense{i}/weight"] = np.ascontiguousarray(_np(sd[f"mapping.fc{i}.weight"]).T)
        mapping[f"Dense{i}/bias"] = _np(sd[f"mapping.fc{i}.bias"])
    synthesis: dict[str, Any] = {}
    res = G.config.resolutions
    synthesis["4x4/Const/const"] = _np(sd["synthesis.b4.const"])[None]
    synthesis.update(_layer(G, "synthesis.b4.conv1", "4x4/Conv"))
    synthesis.update(_layer(G, "synthesis.b4.torgb", "4x4/ToRGB"))
    noises = {0: _np(sd["synthesis.b4.conv1.noise_const"])} if G.config.use_noise else {}
    for r in res[1:]:
        k = int(math.log2(r))
        synthesis.update(_layer(G, f"synthesis.b{r}.conv0", f"{r}x{r}/Conv0_up", flip=True))
        synthesis.update(_layer(G, f"synthesis.b{r}.conv1", f"{r}x{r}/Conv1"))
        synthesis.update(_layer(G, f"synthesis.b{r}.torgb", f"{r}x{r}/ToRGB"))
        if G.config.use_noise:
            noises[2 * k - 5] = _np(sd[f"synthesis.b{r}.conv0.noise_const"])
            noises[2 * k - 4] = _np(sd[f"synthesis.b{r}.conv1.noise_const"])
    for k, value in sorted(noises.items()):
        synthesis[f"noise{k}"] = value[None, None]
    kwargs = {"num_channels": G.config.img_channels, "resolution": G.config.img_resolution,
              "label_size": 0, **gs_kwargs}  # fmt: skip
    parts = {
        "synthesis": network("G_synthesis", synthesis_func, synthesis, static_kwargs=kwargs),
        "mapping": network("G_mapping", "G_mapping", mapping, static_kwargs=kwargs),
    }
    top = {"lod": np.float32(0.0), "dlatent_avg": _np(sd["mapping.w_avg"])}
    gs = network("Gs", "G_main", top, components=parts, static_kwargs=kwargs)
    # G is a different network (the raw training weights): a reader must take Gs.
    g = network("G", "G_main", {"lod": np.float32(0.0), "dlatent_avg": top["dlatent_avg"] * 0})
    d = network("D", "D_stylegan2", {"Output/weight": np.zeros((4, 1), np.float32)})
    return g, d, gs


def tf_pickle_bytes(obj: Any) -> bytes:
    """Pickle ``obj`` with protocol 4 (numpy's globals as this numpy spells them)."""
    buf = io.BytesIO()
    pickle.dump(obj, buf, protocol=4)
    return buf.getvalue()


def write_tf_pickle(path: Path, G: Generator, **kwargs: Any) -> Path:
    """Write ``G`` as a TensorFlow-layout ``(G, D, Gs)`` pickle; ``kwargs`` go to Gs."""
    Path(path).write_bytes(tf_pickle_bytes(tf_networks(G, **kwargs)))
    return Path(path)
