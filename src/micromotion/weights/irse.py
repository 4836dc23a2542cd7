"""IR-SE50 (ArcFace) weights: pSp/StyleCLIP's ``model_ir_se50.pth``, read strictly and safely."""

from __future__ import annotations

import os

import torch

from micromotion.networks.irse import IRSE, irse50
from micromotion.weights.state import as_state_dict, check_state_dict, load_torch_file

_WHAT = "IR-SE50 weights"


def load_irse50(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> IRSE:
    """Load ``model_ir_se50.pth`` (a plain state dict) strictly, in eval mode, frozen.

    Raises:
        CheckpointError: Missing file, not a weights-only state dict, or keys/shapes that are
            not IR-SE50's (one line naming the file).
    """
    obj = load_torch_file(path, what=_WHAT)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    state = as_state_dict(obj, path, what=_WHAT)
    model = irse50()
    expected = model.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}  # older PyTorch
    check_state_dict(state, expected, path, problem=f"not {_WHAT}", optional=optional)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device)
