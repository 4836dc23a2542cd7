"""Generator file formats, one module each, each owning its reader *and* its writer.

* :mod:`.safetensors` — micromotion's own ``.safetensors`` (config as JSON metadata).
* :mod:`.rosinality` — rosinality/stylegan2-pytorch ``.pt`` (also pSp/e4e ``decoder.*``).
* :mod:`.nvidia` — NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 ``.pkl``, read
  through the restricted unpickler of :mod:`.nvidia_pickle` (embedded code never runs).

Each reader turns a file's tensors into our module's state dict by a table of renames and
reshapes, then builds the network through :func:`micromotion.weights.formats._build.build`.
"""
