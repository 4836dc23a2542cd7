"""A micromotion: one editing direction in W+ with the subspace it came from.

A :class:`Micromotion` holds the direction ``d`` ``[num_ws, w_dim]``, an optional per-layer
mask, and, when it was decoded from anchors, the per-layer low-rank basis, singular values
and the denoised anchors, so a result can be inspected and reproduced. It is stored as a
``.safetensors`` file whose JSON metadata records what made it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from micromotion.core.io import require_file, save_safetensors
from micromotion.core.provenance import provenance
from micromotion.errors import CheckpointError, MicromotionError
from micromotion.subspace.decompose import decompose, decompose_faces
from micromotion.subspace.direction import (
    DEFAULT_METHOD,
    Method,
    direction_from,
    joint_direction,
)
from micromotion.subspace.layers import layer_mask, layers_text

#: Format tag stored in the safetensors metadata.
MICROMOTION_FORMAT = "micromotion-direction"
MICROMOTION_FORMAT_VERSION = "1"

_OPTIONAL_TENSORS = ("basis", "singular_values", "denoised_anchors", "anchors")


@dataclass
class Micromotion:
    """An editing direction in W+ space, with provenance.

    Attributes:
        direction: ``[num_ws, w_dim]`` float32, the full direction (unmasked).
        mask: ``[num_ws]`` bool; edits move only the layers where it is true.
        metadata: JSON-serialisable facts: name, source (text / video / latents / official),
            rank, robust, method, generator fingerprint, version, creation time, ...
        basis: ``[num_ws, k, w_dim]`` per-layer orthonormal basis of the low-rank subspace.
        singular_values: ``[num_ws, s]`` per-layer spectrum of the low-rank anchors.
        denoised_anchors: ``[n, num_ws, w_dim]`` the low-rank reconstruction of the anchors.
        anchors: ``[n, num_ws, w_dim]`` the anchors as given.
    """

    direction: torch.Tensor
    mask: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)
    basis: torch.Tensor | None = None
    singular_values: torch.Tensor | None = None
    denoised_anchors: torch.Tensor | None = None
    anchors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.direction.ndim != 2:
            raise MicromotionError(
                f"a direction must be [num_ws, w_dim], got {list(self.direction.shape)}"
            )
        if not torch.isfinite(self.direction).all():
            raise MicromotionError("the direction contains NaN or inf")
        if not torch.isfinite(self.direction.float().norm()):
            # Finite entries whose squares overflow: anchors far outside any W space.
            raise MicromotionError("the direction is too large: its norm overflows float32")
        if self.mask.shape != (self.num_ws,):
            raise MicromotionError(f"mask must be [{self.num_ws}], got {list(self.mask.shape)}")
        self.mask = self.mask.to(torch.bool)
        if not self.mask.any():
            raise MicromotionError("the layer mask selects no layer")
        if not isinstance(self.metadata, dict):
            raise MicromotionError("metadata must be a JSON object")
        fingerprint = self.metadata.get("generator_fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise MicromotionError("metadata generator_fingerprint must be a string")
        expected = {
            "basis": (self.num_ws, None, self.w_dim),
            "singular_values": (self.num_ws, None),
            "denoised_anchors": (None, self.num_ws, self.w_dim),
            "anchors": (None, self.num_ws, self.w_dim),
        }
        for key, shape in expected.items():
            value = getattr(self, key)
            if value is None:
                continue
            if value.ndim != len(shape) or any(
                want is not None and got != want
                for got, want in zip(value.shape, shape, strict=True)
            ):
                raise MicromotionError(f"{key} has shape {list(value.shape)}, expected {shape}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_anchors(
        cls,
        anchors: torch.Tensor,
        *,
        rank: int | Literal["auto"] = 4,
        robust: bool = True,
        center: bool = False,
        method: Method | None = None,
        times: torch.Tensor | None = None,
        layers: str | Sequence[int] | None = None,
        name: str = "micromotion",
        source: str = "latents",
        generator_fingerprint: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        rpca_kwargs: Mapping[str, Any] | None = None,
        end_anchor: int = -1,
    ) -> Micromotion:
        """Decode a micromotion from anchor codes of one face (or several) performing a motion.

        Per W+ layer the ``n × w_dim`` anchor matrix is split by robust PCA into low-rank and
        sparse parts, reconstructed at ``rank``, and the direction is read off the
        reconstruction (see :func:`micromotion.subspace.direction_from`).

        Anchors of several faces, ``[F, n, num_ws, w_dim]`` with ``F ≥ 2``, are centred face
        by face and decomposed jointly (:func:`micromotion.subspace.decompose_faces`); the
        direction is the mean of the faces' own reads
        (:func:`micromotion.subspace.joint_direction`). The stored ``anchors`` and
        ``denoised_anchors`` are then the ``F·n`` rows face after face, and the metadata
        records ``num_faces``, ``anchors_per_face`` and ``center: "per-face"``. ``F = 1``
        is the one-face decomposition exactly (``center`` as given).

        Args:
            anchors: ``[n, num_ws, w_dim]`` W+ codes in motion order, ``n ≥ 3``; or
                ``[F, n, num_ws, w_dim]`` for ``F`` faces.
            rank: Rank of the reconstruction (4 in the paper) or ``"auto"``.
            robust: Robust PCA (the paper); ``False`` for plain truncated PCA (ablations).
            center: Subtract the per-layer mean before the decomposition (several faces are
                always centred face by face).
            method: ``"endpoints"`` (the paper's definition) or ``"slope"``; ``None`` picks
                the library default.
            times: ``[n]`` times of the anchors for ``"slope"`` (default: evenly spaced).
            layers: Layers the edit moves, e.g. ``"0-7"`` (default: all).
            name: Name recorded in the metadata (e.g. ``"smile"``).
            source: Where the anchors came from: ``text``, ``video`` or ``latents``.
            generator_fingerprint: sha256 of the generator the anchors belong to.
            metadata: Further JSON-serialisable facts to record (template, video, ...).
            rpca_kwargs: Options for :func:`micromotion.subspace.robust_pca`.
            end_anchor: The anchor the motion ends at (default ``-1``, the last; ``-2`` is the
                paper code's "90%" slip), see :func:`micromotion.subspace.direction_from`.
                Every anchor still enters the decomposition.

        Returns:
            The decoded micromotion.
        """
        faces: dict[str, Any] = {}
        if isinstance(anchors, torch.Tensor) and anchors.ndim == 4:
            faces = {"num_faces": int(anchors.shape[0]), "anchors_per_face": int(anchors.shape[1])}
            if anchors.shape[0] == 1:
                anchors = anchors[0]  # one face: the one-face decomposition, bit for bit
        used_method = method or DEFAULT_METHOD
        if faces and faces["num_faces"] > 1:
            decomp = decompose_faces(
                _check_faces(anchors), rank=rank, robust=robust, rpca_kwargs=dict(rpca_kwargs or {})
            )
            direction = joint_direction(
                decomp.denoised, method=used_method, times=times, end_anchor=end_anchor
            )
            # Rows face after face: [F·n, num_ws, w_dim], the shape every reader expects.
            anchors = anchors.flatten(0, 1)
            denoised = decomp.denoised.flatten(0, 1)
            center_used: bool | str = "per-face"
        else:
            anchors = _check_anchors(anchors)
            decomp = decompose(
                anchors,
                rank=rank,
                robust=robust,
                center=center,
                rpca_kwargs=dict(rpca_kwargs or {}),
            )
            direction = direction_from(
                decomp.denoised, method=used_method, times=times, end_anchor=end_anchor
            )
            denoised = decomp.denoised
            center_used = center
        num_ws = anchors.shape[1]
        mask = (
            layer_mask(layers, num_ws)
            if layers is not None
            else torch.ones(num_ws, dtype=torch.bool)
        )
        meta = {
            "name": name,
            "source": source,
            "num_anchors": int(anchors.shape[0]),
            "rank": decomp.rank,
            "rank_requested": rank,
            "robust": robust,
            "center": center_used,
            **faces,
            "method": used_method,
            "end_anchor": end_anchor,
            "layers": layers_text(mask),
            "generator_fingerprint": generator_fingerprint,
            "rpca": _jsonable(getattr(decomp, "rpca", None)),
            **dict(metadata or {}),
        }
        return cls(
            direction=direction.float().contiguous(),
            mask=mask,
            metadata=provenance(**meta),
            basis=decomp.basis.float().contiguous(),
            singular_values=decomp.singular_values.float().contiguous(),
            denoised_anchors=denoised.float().contiguous(),
            anchors=anchors.float().contiguous(),
        )

    @classmethod
    def from_official(cls, tensor: torch.Tensor, *, name: str, file: str = "") -> Micromotion:
        """Wrap one of the paper's pre-computed ``[1, num_ws, w_dim]`` directions, bit for bit."""
        t = tensor.detach()
        if t.ndim == 3 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 2:
            raise MicromotionError(
                f"an official direction is [1, num_ws, w_dim], got {list(tensor.shape)}"
            )
        if t.dtype != torch.float32:
            raise MicromotionError(f"an official direction is float32, got {t.dtype}")
        meta = {
            "name": name,
            "source": "official",
            "origin": "github.com/wuqiuche/micromotion-styleGAN (MIT, (c) 2022 Qiucheng Wu)",
            "file": file,
            "note": "pre-computed by the paper's authors; the paper renders w + (i/100)*5*d",
        }
        return cls(
            direction=t.clone().contiguous(),
            mask=torch.ones(t.shape[0], dtype=torch.bool),
            metadata=provenance(**meta),
        )

    # ------------------------------------------------------------------ properties

    @property
    def num_ws(self) -> int:
        """Number of W+ entries the direction spans."""
        return int(self.direction.shape[0])

    @property
    def w_dim(self) -> int:
        """Width of each W+ entry."""
        return int(self.direction.shape[1])

    @property
    def name(self) -> str:
        """The recorded name."""
        return str(self.metadata.get("name", "micromotion"))

    @property
    def norm(self) -> float:
        """Euclidean norm of the masked direction: how far one unit of strength moves a code."""
        return float(self.masked_direction.norm())

    @property
    def num_anchors(self) -> int | None:
        """How many anchors the micromotion was decoded from, when they were kept."""
        return None if self.anchors is None else int(self.anchors.shape[0])

    @property
    def masked_direction(self) -> torch.Tensor:
        """``[num_ws, w_dim]`` the direction with masked-out layers zeroed."""
        return self.direction * self.mask[:, None].to(self.direction.dtype)

    def with_layers(self, layers: str | Sequence[int] | None) -> Micromotion:
        """Return a copy whose edits move only ``layers`` (``None``: all layers)."""
        mask = (
            torch.ones(self.num_ws, dtype=torch.bool)
            if layers is None
            else layer_mask(layers, self.num_ws)
        )
        meta = {**self.metadata, "layers": layers_text(mask)}
        return replace(self, mask=mask, metadata=meta)  # the tensors are shared, not copied

    # ------------------------------------------------------------------ editing

    def check_compatible(
        self, *, num_ws: int, w_dim: int, fingerprint: str | None = None, what: str = "generator"
    ) -> None:
        """Raise on a shape mismatch; warn if the direction was made on another network.

        Directions do transfer between checkpoints of one architecture (for example FFHQ
        networks fine-tuned on other domains), so a different fingerprint is only a warning.
        """
        if (num_ws, w_dim) != (self.num_ws, self.w_dim):
            raise MicromotionError(
                f"micromotion {self.name!r} is for W+ of [{self.num_ws}, {self.w_dim}], "
                f"but the {what} has [{num_ws}, {w_dim}]"
            )
        own = self.metadata.get("generator_fingerprint")
        if fingerprint and own and own != fingerprint:
            warnings.warn(
                f"micromotion {self.name!r} was decoded on generator {own[:12]}…, "
                f"applying it to {fingerprint[:12]}…",
                stacklevel=2,
            )

    def edit(self, ws: torch.Tensor, strength: float | torch.Tensor) -> torch.Tensor:
        """Return ``ws + strength·d`` on the masked layers.

        Args:
            ws: ``[num_ws, w_dim]`` or ``[N, num_ws, w_dim]``.
            strength: A number, or a tensor broadcastable to ``[N]``.

        Returns:
            Edited codes with ``ws``'s dtype: ``ws``'s shape, or ``[N, num_ws, w_dim]`` when a
            1-D ``strength`` of length N moves a single code.
        """
        if ws.shape[-2:] != (self.num_ws, self.w_dim):
            raise MicromotionError(
                f"codes of shape {list(ws.shape)} do not match micromotion {self.name!r} "
                f"([..., {self.num_ws}, {self.w_dim}])"
            )
        d = self.masked_direction.to(device=ws.device, dtype=ws.dtype)
        s = torch.as_tensor(strength, device=ws.device, dtype=ws.dtype)
        if s.ndim == 1:
            s = s[:, None, None]
        return ws + s * d

    def trajectory(
        self, ws: torch.Tensor, strengths: Sequence[float] | torch.Tensor
    ) -> torch.Tensor:
        """Return ``[T, num_ws, w_dim]``: one code ``ws`` moved to each strength in turn."""
        if ws.ndim == 3 and ws.shape[0] == 1:
            ws = ws[0]
        if ws.ndim != 2:
            raise MicromotionError(
                f"trajectory() takes one code [num_ws, w_dim], got {list(ws.shape)}"
            )
        s = torch.as_tensor(strengths, dtype=ws.dtype, device=ws.device).reshape(-1)
        return self.edit(ws.unsqueeze(0).expand(s.shape[0], -1, -1), s)

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the micromotion as ``.safetensors`` atomically; returns the path."""
        tensors = {"direction": self.direction.detach().cpu().float().contiguous()}
        tensors["mask"] = self.mask.detach().cpu().to(torch.uint8).contiguous()
        for key in _OPTIONAL_TENSORS:
            value = getattr(self, key)
            if value is not None:
                tensors[key] = value.detach().cpu().float().contiguous()
        meta = {
            "format": MICROMOTION_FORMAT,
            "format_version": MICROMOTION_FORMAT_VERSION,
            "metadata": json.dumps({**self.metadata, "num_ws": self.num_ws, "w_dim": self.w_dim}),
        }
        path = Path(path)
        save_safetensors(tensors, path, meta)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Micromotion:
        """Read a micromotion file written by :meth:`save`.

        Raises:
            CheckpointError: If the file is missing, corrupt, or not a micromotion file.
        """
        from safetensors import SafetensorError, safe_open

        path = require_file(path, what="a micromotion file", error=CheckpointError)
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: not a micromotion file (unreadable as safetensors: {exc})"
            ) from exc
        if meta.get("format") != MICROMOTION_FORMAT:
            raise CheckpointError(
                f"{path}: not a micromotion file ({meta.get('format', 'no micromotion metadata')})"
            )
        try:
            metadata = json.loads(meta.get("metadata", "{}"))
            direction = tensors["direction"]
            mask = tensors["mask"].to(torch.bool)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: incomplete micromotion file ({exc})") from exc
        try:
            return cls(
                direction=direction,
                mask=mask,
                metadata=metadata,
                **{k: tensors.get(k) for k in _OPTIONAL_TENSORS},
            )
        except MicromotionError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        """Return facts for ``micromotion info``: shapes, per-layer norms, spectrum."""
        norms = self.masked_direction.norm(dim=1)  # what an edit moves, layer by layer
        out: dict[str, Any] = {
            "name": self.name,
            "num_ws": self.num_ws,
            "w_dim": self.w_dim,
            "norm": float(self.masked_direction.norm()),
            "layers": layers_text(self.mask),
            "per_layer_norm": [round(float(v), 6) for v in norms],
            "metadata": self.metadata,
        }
        if self.singular_values is not None:
            out["singular_values"] = [
                [round(float(v), 6) for v in row] for row in self.singular_values
            ]
        if self.anchors is not None:
            out["num_anchors"] = int(self.anchors.shape[0])
        return out


# ---------------------------------------------------------------------------------------------


def _check_anchors(anchors: Any) -> torch.Tensor:
    t = torch.as_tensor(anchors)
    if t.ndim != 3:
        raise MicromotionError(f"anchors must be [n, num_ws, w_dim], got {list(t.shape)}")
    if t.shape[0] < 3:
        raise MicromotionError(f"need at least 3 anchors, got {t.shape[0]}")
    if not torch.is_floating_point(t):
        raise MicromotionError(f"anchors must be floating point, got {t.dtype}")
    if not torch.isfinite(t).all():
        raise MicromotionError("anchors contain NaN or inf")
    return t


def _check_faces(anchors: torch.Tensor) -> torch.Tensor:
    """``[F, n, num_ws, w_dim]`` anchors of several faces, each face checked as one face's."""
    for face in anchors:
        _check_anchors(face)
    return anchors


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "_asdict"):
        return _jsonable(obj._asdict())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    return str(obj)
