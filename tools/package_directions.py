"""Rebuild the paper's five directions that ship inside the package, from the published files.

Usage: ``python tools/package_directions.py [REFERENCE_DIR]`` (default ``../shared/reference``).

Each ``NAME.d_latent.pt`` is checked against the sha256 in the zoo (the hash of the file the
paper's repository publishes), imported bit for bit with :func:`import_official` (a safe,
weights-only read) and written as ``src/micromotion/weights/directions/NAME.safetensors`` with
its provenance: the upstream URL, that sha256 and the MIT license. The tests check that the
shipped files equal a fresh import of the published ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from micromotion import hub
from micromotion.core.io import sha256_file
from micromotion.weights.micromotion import PACKAGED_DIRECTIONS, import_official, packaged_metadata

ROOT = Path(__file__).resolve().parents[1]


def main(reference: Path) -> None:
    """Write every packaged direction from ``reference``."""
    out = ROOT / "src" / "micromotion" / "weights" / "directions"
    for name in PACKAGED_DIRECTIONS:
        entry = hub.get(name, kind="direction")
        source = reference / entry.filename
        digest = sha256_file(source)
        if digest != entry.sha256:
            raise SystemExit(f"{source}: sha256 {digest} is not the published {entry.sha256}")
        mm = import_official(source, name=entry.name)
        mm.metadata.update(packaged_metadata(entry))
        mm.save(out / f"{entry.name}.safetensors")
        print(f"{entry.name}: {out / (entry.name + '.safetensors')}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "reference")
