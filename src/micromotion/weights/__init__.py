"""Files ↔ networks and objects: every reader and writer of weights and micromotion files.

* :mod:`.generator` — :func:`load_generator` detects a checkpoint's format and dispatches to
  :mod:`.formats` (micromotion safetensors, rosinality ``.pt``, NVIDIA ``.pkl``).
* :mod:`.lpips`, :mod:`.irse`, :mod:`.clip` — the loaders of the loss networks.
* :mod:`.micromotion` — micromotion files, the paper's direction tensors and zoo names.
* :mod:`.state` — the one safe ``torch.load`` and the one strict state-dict check they share.

Networks never read files themselves; names that are not files go through
:func:`micromotion.hub.resolve`.
"""
