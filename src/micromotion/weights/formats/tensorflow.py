"""NVIDIA's original TensorFlow StyleGAN2 pickles (``stylegan2-*-config-{e,f}.pkl``), without TF.

These files hold a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` objects; ``Gs``,
the moving average of the generator's weights, is the network users mean. Each network
carries the Python source that built its TensorFlow graph (``build_module_src``), which
TensorFlow's own loader *executes*. Here the restricted unpickler of :mod:`.nvidia_pickle`
turns every network into an inert :class:`~.nvidia_pickle.TFNetwork` that only receives its
state; the source is hashed for the record, never run.

The variables are converted by the published rules (the ones NVIDIA's stylegan2-ada-pytorch
applies when it imports these files):

* dense weights ``[in, out]`` are transposed; style (``mod_weight``) matrices too;
* convolution weights ``[kh, kw, in, out]`` become ``[out, in, kh, kw]``; the up-sampling
  convolution's kernel is also flipped in both spatial directions;
* the style bias is stored minus one (``mod_bias + 1``);
* the per-layer noise constants are ``synthesis/noise{k}``, numbered over all convolutions
  (``k = 0`` at 4×4, then ``2·log2(R) − 5`` and ``2·log2(R) − 4`` at resolution ``R``);
* ``dlatent_avg`` of ``Gs`` is ``w_avg``;
* the architecture is read off the variables' shapes (channels per resolution, mapping
  widths), which is what ``fmap_base``/``fmap_max`` produce; ``mapping_lrmul`` comes from the
  network's arguments (default 0.01).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from micromotion.errors import CheckpointError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.weights.formats._build import build
from micromotion.weights.formats.nvidia_pickle import TFNetwork, plain

#: tflib network pickle versions this reader knows (StyleGAN2 writes 4).
KNOWN_VERSIONS = (2, 3, 4)
#: The only synthesis network of StyleGAN2 config e/f.
STYLEGAN2_SYNTHESIS = "G_synthesis_stylegan2"


def _state(net: TFNetwork, path: Path, what: str) -> dict[str, Any]:
    state = getattr(net, "state", None)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {what} has no network state (truncated or corrupt)")
    version = state.get("version")
    if version not in KNOWN_VERSIONS:
        raise CheckpointError(
            f"{path}: {what} is a TensorFlow network of unknown version {version!r} "
            f"(known: {', '.join(map(str, KNOWN_VERSIONS))})"
        )
    return state


def _pick_gs(data: Any, path: Path) -> TFNetwork:
    """``Gs`` of ``(G, D, Gs)``, or the one generator a file holds."""
    nets = [data] if isinstance(data, TFNetwork) else list(data)
    if len(nets) == 3 and all(isinstance(n, TFNetwork) for n in nets):
        return nets[2]
    if len(nets) == 1 and isinstance(nets[0], TFNetwork):
        return nets[0]
    raise CheckpointError(
        f"{path}: expected TensorFlow networks (G, D, Gs), got {len(nets)} objects"
    )


def _variables(net: TFNetwork, path: Path, prefix: str = "") -> dict[str, np.ndarray]:
    """Every variable of ``net`` and its components, named ``component/…/name``."""
    state = _state(net, path, repr(prefix.rstrip("/") or "Gs"))
    found: dict[str, np.ndarray] = {}
    for item in plain(state.get("variables") or []):
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise CheckpointError(f"{path}: malformed TensorFlow variable list")
        found[prefix + item[0]] = np.asarray(item[1], dtype=np.float32)
    for name, comp in (state.get("components") or {}).items():
        if not isinstance(comp, TFNetwork):
            raise CheckpointError(f"{path}: component {name!r} is not a network")
        found.update(_variables(comp, path, f"{prefix}{name}/"))
    return found


def _source_hashes(net: TFNetwork, name: str = "Gs") -> dict[str, str]:
    """sha256 of the (never executed) source each network embeds, for provenance."""
    state = net.state
    out = {}
    src = state.get("build_module_src")
    if isinstance(src, str):
        out[name] = hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()
    for comp_name, comp in (state.get("components") or {}).items():
        if isinstance(comp, TFNetwork):
            out.update(_source_hashes(comp, comp_name))
    return out


def _check_kind(gs: TFNetwork, path: Path) -> dict[str, Any]:
    """Refuse what is not an unconditional StyleGAN2 'skip' generator; return its kwargs."""
    state = _state(gs, path, "Gs")
    func = str(state.get("build_func_name", ""))
    name = str(state.get("name", ""))
    components = state.get("components") or {}
    if func.startswith("D_") or (name.startswith("D") and "synthesis" not in components):
        raise CheckpointError(f"{path}: a discriminator ({func or name}), not a generator")
    if "synthesis" not in components or "mapping" not in components:
        raise CheckpointError(
            f"{path}: {name or 'the network'} has no mapping and synthesis networks "
            "(not a StyleGAN2 generator)"
        )
    synthesis = _state(components["synthesis"], path, "synthesis")
    synth_func = str(synthesis.get("build_func_name", ""))
    if synth_func != STYLEGAN2_SYNTHESIS:
        kind = "a StyleGAN (v1) generator" if synth_func == "G_synthesis" else synth_func
        raise CheckpointError(
            f"{path}: {kind or 'an unknown synthesis network'}; only StyleGAN2 "
            f"({STYLEGAN2_SYNTHESIS}) is supported"
        )
    kwargs: dict[str, Any] = {}
    for part in (state, synthesis, _state(components["mapping"], path, "mapping")):
        kwargs.update(plain(part.get("static_kwargs") or {}))
    architecture = kwargs.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointError(
            f"{path}: synthesis architecture {architecture!r} is not supported yet (only 'skip')"
        )
    if int(kwargs.get("label_size", 0) or 0) != 0:
        raise CheckpointError(f"{path}: conditional generators (label_size > 0) are not supported")
    kernel = kwargs.get("resample_kernel", [1, 3, 3, 1])
    if list(kernel or []) != [1, 3, 3, 1]:
        raise CheckpointError(f"{path}: resample_kernel {kernel!r} is not StyleGAN2's [1, 3, 3, 1]")
    return kwargs


def _conv(tf: np.ndarray, *, flip: bool = False) -> torch.Tensor:
    """``[kh, kw, in, out]`` → ``[out, in, kh, kw]`` (flipped for the up-sampling conv)."""
    if flip:
        tf = tf[::-1, ::-1]
    return torch.from_numpy(np.ascontiguousarray(tf.transpose(3, 2, 0, 1)))


def _layer(v: dict[str, np.ndarray], tf: str, ours: str, *, flip: bool = False) -> dict:
    """One modulated layer (conv or toRGB): weight, bias and style affine."""
    out = {
        f"{ours}.weight": _conv(v[f"{tf}/weight"], flip=flip),
        f"{ours}.bias": torch.from_numpy(v[f"{tf}/bias"]),
        f"{ours}.affine.weight": torch.from_numpy(np.ascontiguousarray(v[f"{tf}/mod_weight"].T)),
        f"{ours}.affine.bias": torch.from_numpy(v[f"{tf}/mod_bias"] + 1),
    }
    if f"{tf}/noise_strength" in v:
        out[f"{ours}.noise_strength"] = torch.from_numpy(v[f"{tf}/noise_strength"].reshape(()))
    return out


def _noise(v: dict[str, np.ndarray], k: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(v[f"synthesis/noise{k}"][0, 0]))


def _convert(v: dict[str, np.ndarray], kwargs: dict[str, Any], path: Path) -> Generator:
    dense = sorted(
        int(n[len("mapping/Dense") :].split("/")[0])
        for n in v
        if n.startswith("mapping/Dense") and n.endswith("/weight")
    )
    if not dense or dense != list(range(len(dense))):
        raise CheckpointError(f"{path}: no mapping network layers (mapping/Dense0 ...)")
    resolutions = sorted(
        int(n.split("/")[1].split("x")[0])
        for n in v
        if n.startswith("synthesis/") and n.endswith("/ToRGB/weight")
    )
    if not resolutions or resolutions[0] != 4:
        raise CheckpointError(f"{path}: no synthesis layers (synthesis/4x4/ToRGB ...)")
    res = resolutions[-1]
    if resolutions != [2**i for i in range(2, int(math.log2(res)) + 1)]:
        raise CheckpointError(f"{path}: synthesis resolutions {resolutions} are not 4, 8, ...")
    sd: dict[str, torch.Tensor] = {}
    for i in dense:
        sd[f"mapping.fc{i}.weight"] = torch.from_numpy(
            np.ascontiguousarray(v[f"mapping/Dense{i}/weight"].T)
        )
        sd[f"mapping.fc{i}.bias"] = torch.from_numpy(v[f"mapping/Dense{i}/bias"])
    sd["mapping.w_avg"] = torch.from_numpy(v["dlatent_avg"])
    sd["synthesis.b4.const"] = torch.from_numpy(
        np.ascontiguousarray(v["synthesis/4x4/Const/const"][0])
    )
    sd.update(_layer(v, "synthesis/4x4/Conv", "synthesis.b4.conv1"))
    sd.update(_layer(v, "synthesis/4x4/ToRGB", "synthesis.b4.torgb"))
    use_noise = "synthesis/noise0" in v
    if use_noise:
        sd["synthesis.b4.conv1.noise_const"] = _noise(v, 0)
    for r in resolutions[1:]:
        k = int(math.log2(r))
        tf = f"synthesis/{r}x{r}"
        sd.update(_layer(v, f"{tf}/Conv0_up", f"synthesis.b{r}.conv0", flip=True))
        sd.update(_layer(v, f"{tf}/Conv1", f"synthesis.b{r}.conv1"))
        sd.update(_layer(v, f"{tf}/ToRGB", f"synthesis.b{r}.torgb"))
        if use_noise:
            sd[f"synthesis.b{r}.conv0.noise_const"] = _noise(v, 2 * k - 5)
            sd[f"synthesis.b{r}.conv1.noise_const"] = _noise(v, 2 * k - 4)
    w_dim = int(sd["mapping.w_avg"].shape[0])
    hidden = int(sd["mapping.fc0.weight"].shape[0]) if len(dense) > 1 else w_dim
    config = GeneratorConfig(
        img_resolution=res,
        channels=tuple(int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions),
        z_dim=int(sd["mapping.fc0.weight"].shape[1]),
        w_dim=w_dim,
        img_channels=int(sd[f"synthesis.b{res}.torgb.weight"].shape[0]),
        mapping_layers=len(dense),
        mapping_features=None if hidden == w_dim else hidden,
        mapping_lr_mul=float(kwargs.get("mapping_lrmul", 0.01)),
        conv_clamp=None,
        use_noise=use_noise,
    )
    return build(config, sd, path)


def from_tensorflow(data: Any, path: Path) -> Generator:
    """Build our generator from an unpickled TensorFlow StyleGAN2 pickle (its ``Gs``).

    Args:
        data: What the restricted unpickler returned: ``(G, D, Gs)`` or one network.
        path: The file, for messages.

    Raises:
        CheckpointError: For a pickle that is not an unconditional StyleGAN2 'skip' generator
            (a discriminator, StyleGAN v1, resnet, conditional), an unknown version, or
            missing or misshapen variables — one line naming the file.
    """
    gs = _pick_gs(data, path)
    kwargs = _check_kind(gs, path)
    variables = _variables(gs, path)
    try:
        G = _convert(variables, kwargs, path)
    except KeyError as exc:
        raise CheckpointError(f"{path}: incomplete TensorFlow generator (missing {exc})") from None
    except (ValueError, IndexError, TypeError) as exc:
        raise CheckpointError(f"{path}: malformed TensorFlow generator ({exc})") from None
    G.source = {
        "format": "tensorflow-pkl",
        "network": str(gs.state.get("name", "Gs")),
        "w_avg": "checkpoint",
        "build_module_src_sha256": _source_hashes(gs),
    }
    return G
