"""Step 2 — the robust low-rank subspace of anchors, and the micromotion it defines.

The paper (Wu et al., "Decoding Micromotion in Low-dimensional Latent Spaces from StyleGAN",
CPAL 2024) takes ``n`` W+ codes ("anchors") of one face performing a small motion and, for
each W+ entry separately, splits the ``n × w_dim`` anchor matrix into a low-rank part and a
sparse part by principal component pursuit (robust PCA), keeps the low-rank part at rank 4,
and reads the editing direction off that reconstruction. These are pure tensor functions: no
file I/O, no generator, no printing.

* :func:`robust_pca` (:mod:`.rpca`) -- principal component pursuit by the inexact augmented
  Lagrangian method, batched over leading dimensions.
* :func:`decompose` (:mod:`.decompose`) -- per-layer RPCA + rank-``k`` truncation of
  ``[n, num_ws, w_dim]`` anchors.
* :func:`decompose_faces` (:mod:`.decompose`) -- several faces' anchors
  ``[F, n, num_ws, w_dim]``: per-face centring, then one joint decomposition per layer.
* :func:`direction_from` (:mod:`.direction`) -- the editing direction of reconstructed
  anchors: the paper's ``endpoints``, a least-squares ``slope``, or (default) an
  outlier-resistant ``robust-slope``; ``benchmarks/subspace.py`` compares them.
* :func:`joint_direction` (:mod:`.direction`) -- the mean of several faces' directions.
* :func:`layer_mask` (:mod:`.layers`) -- parse ``"0-3,8"``-style layer selections.
* :class:`Micromotion` (:mod:`.micromotion`) -- a direction with the subspace it came from.
"""

from micromotion.subspace.decompose import Decomposition, RPCAInfo, decompose, decompose_faces
from micromotion.subspace.direction import (
    DEFAULT_METHOD,
    Method,
    direction_from,
    joint_direction,
)
from micromotion.subspace.layers import layer_mask, layers_text
from micromotion.subspace.micromotion import Micromotion
from micromotion.subspace.rpca import RPCAResult, robust_pca

__all__ = [
    "DEFAULT_METHOD",
    "Decomposition",
    "Method",
    "Micromotion",
    "RPCAInfo",
    "RPCAResult",
    "decompose",
    "decompose_faces",
    "direction_from",
    "joint_direction",
    "layer_mask",
    "layers_text",
    "robust_pca",
]
