"""Hostile and odd input, across every command, table-driven.

Each case runs one command line on a fresh copy of a workspace of inputs (a tiny generator,
micromotions, codes, photos, a video, a tiny CLIP, hostile pickles...) and asserts what a
user must be able to rely on:

* a non-zero exit (1 for our errors, 2 for click's usage errors),
* exactly one line on stderr, starting with ``error:``, naming the problem; no traceback,
* no output at all: no new file, no hidden temporary file, no empty directory,
* every input byte-identical afterwards.

Signals (SIGTERM, SIGHUP, SIGINT during a render) run the real console script in a
subprocess, at the end of this file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator, write_lossless_mp4
from micromotion.cli import main
from micromotion.media.images import to_uint8
from micromotion.networks.sampling import sample_ws
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.generator import save_generator


class _Hostile:
    """Unpickling this runs a shell command: the file must be refused before that."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _micromotion(direction: torch.Tensor, name: str) -> Micromotion:
    return Micromotion(
        direction=direction,
        mask=torch.ones(direction.shape[0], dtype=torch.bool),
        metadata={"name": name},
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Every input the cases use, built once; each case works on its own copy."""
    ws = tmp_path_factory.mktemp("hostile")
    G = tiny_generator(0)
    save_generator(G, ws / "gen.safetensors")
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(G.num_ws, G.w_dim, generator=g)
    _micromotion(direction, "mm").save(ws / "mm.safetensors")
    _micromotion(torch.zeros_like(direction), "zero").save(ws / "zero.safetensors")
    front = direction.clone()
    front[:2] = 0
    _micromotion(front, "front").save(ws / "front.safetensors")
    _micromotion(torch.randn(G.num_ws, G.w_dim + 1, generator=g), "other").save(
        ws / "other.safetensors"
    )
    codes = sample_ws(G, [1, 2, 3, 4, 5], truncation_psi=0.7).numpy()  # [5, num_ws, w_dim]
    np.save(ws / "w.npy", codes[0])
    np.save(ws / "codes.npy", codes[:2])
    np.save(ws / "anchors.npy", codes)
    np.save(ws / "L_anchors.npy", codes)
    np.save(ws / "same.npy", np.repeat(codes[:1], 5, axis=0))
    np.save(ws / "big.npy", codes * 1e30)
    np.save(ws / "nan.npy", np.where(codes > 0, np.nan, codes))
    np.save(ws / "int.npy", (codes * 10).astype(np.int64))
    np.save(ws / "empty.npy", codes[:0])
    np.save(ws / "f64big.npy", np.full(codes.shape, 1e300))
    np.save(ws / "obj.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    (ws / "trunc.npy").write_bytes((ws / "anchors.npy").read_bytes()[:200])
    (ws / "zero_bytes.npy").write_bytes(b"")
    with torch.no_grad():
        faces = to_uint8(G.synthesis(torch.from_numpy(codes[:2]), noise_mode="const"))
    Image.fromarray(faces[0]).save(ws / "a.png")
    Image.fromarray(faces[1]).save(ws / "a_recon.png")
    (ws / "x").mkdir()
    (ws / "y").mkdir()
    Image.fromarray(faces[0]).save(ws / "x" / "face.png")
    Image.fromarray(faces[1]).save(ws / "y" / "face.png")
    Image.new("L", (12000, 12000)).save(ws / "bomb.png")  # ~140 kB, 144 MP decoded
    (ws / "notimage.png").write_text("this is text, not a PNG\n")
    (ws / "empty.png").write_bytes(b"")
    write_lossless_mp4(ws / "clip.mp4", np.repeat(faces[:1], 4, axis=0))
    (ws / "notvideo.mp4").write_text("not a video\n")
    (ws / "clip.json").write_text(json.dumps(TINY_CLIP))
    torch.save(tiny_clip_module(1).state_dict(), ws / "clip.pt")
    torch.save({"w": _Hostile()}, ws / "evil.pt")
    (ws / "evil.pkl").write_bytes(pickle.dumps(_Hostile()))
    (ws / "garbage.pkl").write_bytes(b"\x80\x04garbage that is not a pickle")
    (ws / "html.pt").write_text("<html><body>Google Drive: quota exceeded</body></html>")
    (ws / "trunc.safetensors").write_bytes((ws / "gen.safetensors").read_bytes()[:300])
    (ws / "adir").mkdir()
    (ws / "afile").write_text("a plain file\n")
    (ws / "garbage.bin").write_bytes(b"\x00" * 64)
    return ws


@dataclass(frozen=True)
class Case:
    """One command line and what its single error line must say."""

    id: str
    args: tuple[str, ...]
    says: str
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    code: int = 1


GEN = ("--generator", "gen.safetensors")
APPLY = ("apply", "mm.safetensors", *GEN)
TEXT = ("discover", "text", "--template", "a {degree} smile", *GEN, "--clip", "clip.json:clip.pt")
TEXT_FAST = (*TEXT, "--degrees", "no,50%,100%", "--steps", "2")


def _dir(*names: str) -> Callable[[Path], None]:
    return lambda root: [(root / n).mkdir(parents=True) for n in names] and None


def _hard_link(root: Path) -> None:
    os.link(root / "gen.safetensors", root / "hard.safetensors")


def _sym_link(root: Path) -> None:
    (root / "link.safetensors").symlink_to(root / "gen.safetensors")


CASES = [
    # --- outputs that would destroy an input -------------------------------------------
    Case(
        "apply-image-over-itself",
        (*APPLY, "--image", "a.png", "-o", "a.png"),
        "a.png: would be overwritten",
    ),
    Case(
        "apply-image-over-itself-no-align",
        (*APPLY, "--image", "a.png", "--no-align", "-o", "a.png"),
        "a.png: would be overwritten",
    ),
    Case(
        "apply-side-file-over-the-image",
        (*APPLY, "--image", "a_recon.png", "--no-align", "-o", "a.mp4"),
        "a_recon.png: would be overwritten",
    ),
    Case(
        "apply-record-over-the-latent",
        (*APPLY, "--latent", "o.png.json", "-o", "o.png"),
        "o.png.json: would be overwritten",
        setup=lambda root: shutil.copy(root / "w.npy", root / "o.png.json"),
    ),
    Case(
        "invert-recon-over-second-input",
        ("invert", "a.png", "a_recon.png", *GEN, "--no-align", "-o", "."),
        "a_recon.png: would be overwritten",
    ),
    Case(
        "invert-two-inputs-one-name",
        ("invert", "x/face.png", "y/face.png", *GEN, "--no-align", "-o", "out"),
        "share the name 'face'",
    ),
    Case(
        "discover-text-anchors-over-the-latent",
        (*TEXT_FAST, "--latent", "L_anchors.npy", "-o", "L.safetensors"),
        "L_anchors.npy: would be overwritten",
    ),
    Case(
        "convert-over-itself",
        ("convert", "gen.safetensors", "gen.safetensors"),
        "would be overwritten",
    ),
    Case(
        "convert-over-a-hard-link",
        ("convert", "gen.safetensors", "hard.safetensors"),
        "would be overwritten",
        setup=_hard_link,
    ),
    Case(
        "convert-over-a-symlink",
        ("convert", "gen.safetensors", "link.safetensors"),
        "would be overwritten",
        setup=_sym_link,
    ),
    Case("align-over-the-photo", ("align", "a.png", "-o", "."), "a.png: would be overwritten"),
    # --- side files that cannot be written: refused before any work ---------------------
    Case(
        "apply-output-is-a-directory",
        (*APPLY, "--seed", "1", "-o", "adir.mp4"),
        "is a directory",
        setup=_dir("adir.mp4"),
    ),
    Case(
        "apply-record-is-a-directory",
        (*APPLY, "--seed", "1", "-o", "o.mp4"),
        "o.mp4.json: is a directory",
        setup=_dir("o.mp4.json"),
    ),
    Case(
        "apply-crop-is-a-directory",
        (*APPLY, "--image", "a.png", "--no-align", "--steps", "2", "-o", "o.mp4"),
        "o_aligned.png: is a directory",
        setup=_dir("o_aligned.png"),
    ),
    Case(
        "apply-parent-is-a-file",
        (*APPLY, "--seed", "1", "-o", "afile/o.mp4"),
        "afile is not a directory",
    ),
    Case(
        "generate-latents-is-a-directory",
        ("generate", *GEN, "--seeds", "0-2", "--outdir", "g"),
        "latents.npy: is a directory",
        setup=_dir("g/latents.npy"),
    ),
    Case(
        "generate-record-is-a-directory",
        ("generate", *GEN, "--outdir", "g"),
        "generate.json: is a directory",
        setup=_dir("g/generate.json"),
    ),
    Case(
        "generate-outdir-is-a-file",
        ("generate", *GEN, "--outdir", "afile"),
        "afile: exists and is not a directory",
    ),
    Case(
        "invert-code-is-a-directory",
        ("invert", "a.png", *GEN, "--no-align", "--steps", "2", "-o", "inv"),
        "a.npy: is a directory",
        setup=_dir("inv/a.npy"),
    ),
    Case(
        "discover-video-strip-is-a-directory",
        (
            "discover",
            "video",
            "clip.mp4",
            *GEN,
            "--no-align",
            "--frames",
            "3",
            "-o",
            "v.safetensors",
        ),
        "v_strip.png: is a directory",
        setup=_dir("v_strip.png"),
    ),
    Case(
        "discover-latents-output-suffix",
        ("discover", "latents", "anchors.npy", "-o", "anchors.npy"),
        "NAME.safetensors",
    ),
    # --- numbers: finite, float32-sized, in range -----------------------------------------
    Case("fps-nan", (*APPLY, "--seed", "1", "--fps", "nan", "-o", "o.mp4"), "--fps nan"),
    Case("fps-inf", (*APPLY, "--seed", "1", "--fps", "inf", "-o", "o.mp4"), "--fps", code=2),
    Case(
        "truncation-nan-apply",
        (*APPLY, "--seed", "1", "--truncation", "nan", "-o", "o.mp4"),
        "--truncation nan: must be a finite number",
    ),
    Case(
        "truncation-nan-generate",
        ("generate", *GEN, "--truncation", "nan", "--outdir", "g"),
        "--truncation nan: must be a finite number",
    ),
    Case(
        "truncation-inf",
        ("generate", *GEN, "--truncation", "inf", "--outdir", "g"),
        "--truncation",
        code=2,
    ),
    Case(
        "strength-nan",
        (*APPLY, "--seed", "1", "--strength", "nan", "-o", "o.png"),
        "--strength nan: must be a finite number",
    ),
    Case(
        "strength-inf",
        (*APPLY, "--seed", "1", "--strength", "inf", "-o", "o.png"),
        "--strength inf: must be a finite number",
    ),
    Case(
        "strength-over-float32",
        (*APPLY, "--seed", "1", "--strength", "1e39", "-o", "o.png"),
        "too large for float32",
    ),
    Case(
        "strength-overflows-the-codes",
        (*APPLY, "--seed", "1", "--strength", "3e38", "-o", "o.png"),
        "overflow float32",
    ),
    Case(
        "strength-count",
        (
            *APPLY,
            "--micromotion",
            "mm.safetensors",
            "--seed",
            "1",
            "--strength",
            "1",
            "--strength",
            "2",
            "--strength",
            "3",
            "-o",
            "o.png",
        ),
        "3 --strength values for 2 micromotions",
    ),
    Case("lr-nan", (*TEXT_FAST, "--lr", "nan", "-o", "t.safetensors"), "--lr nan"),
    Case(
        "l2-lambda-inf",
        (*TEXT_FAST, "--l2-lambda", "inf", "-o", "t.safetensors"),
        "--l2-lambda",
        code=2,
    ),
    Case(
        "start-nan",
        ("discover", "video", "clip.mp4", *GEN, "--start", "nan", "-o", "v.safetensors"),
        "--start nan",
    ),
    Case(
        "end-before-start",
        (
            "discover",
            "video",
            "clip.mp4",
            *GEN,
            "--start",
            "2",
            "--end",
            "1",
            "-o",
            "v.safetensors",
        ),
        "must be after --start",
    ),
    Case("frames-one", (*APPLY, "--seed", "1", "--frames", "1", "-o", "o.png"), "--frames", code=2),
    Case("steps-zero", ("invert", "a.png", *GEN, "--steps", "0", "-o", "inv"), "--steps", code=2),
    Case("seeds-garbage", ("generate", *GEN, "--seeds", "1-x", "--outdir", "g"), "--seeds"),
    Case(
        "rank-zero",
        ("discover", "latents", "anchors.npy", "--rank", "0", "-o", "d.safetensors"),
        "--rank '0': must be at least 1",
    ),
    Case(
        "rank-word",
        ("discover", "latents", "anchors.npy", "--rank", "four", "-o", "d.safetensors"),
        "--rank 'four'",
    ),
    Case(
        "layers-out-of-range",
        ("discover", "latents", "anchors.npy", "--layers", "40-50", "-o", "d.safetensors"),
        "40",
    ),
    # --- nonsense gets a word -------------------------------------------------------------
    Case(
        "zero-direction",
        ("apply", "zero.safetensors", *GEN, "--seed", "1", "-o", "o.png"),
        "direction is zero",
    ),
    Case(
        "zero-on-the-chosen-layers",
        ("apply", "front.safetensors", *GEN, "--seed", "1", "--layers", "0-1", "-o", "o.png"),
        "zero on layers 0-1",
    ),
    Case(
        "identical-anchors",
        ("discover", "latents", "same.npy", "-o", "d.safetensors"),
        "anchors are identical",
    ),
    Case(
        "text-steps-one",
        (*TEXT, "--degrees", "no,100%", "--steps", "1", "-o", "t.safetensors"),
        "--steps 1: the learning rate ramps up from 0",
    ),
    Case(
        "invert-steps-one",
        ("invert", "a.png", *GEN, "--no-align", "--steps", "1", "-o", "inv"),
        "--steps 1: the learning rate ramps up from 0",
    ),
    Case(
        "huge-anchors",
        ("discover", "latents", "big.npy", "-o", "d.safetensors"),
        "norm overflows float32",
    ),
    Case(
        "wrong-generator-shape",
        ("apply", "other.safetensors", *GEN, "--seed", "1", "-o", "o.png"),
        "other",
    ),
    # --- codes and anchors files ------------------------------------------------------------
    Case(
        "latent-truncated",
        (*APPLY, "--latent", "trunc.npy", "-o", "o.png"),
        "trunc.npy: corrupt or truncated .npy array",
    ),
    Case(
        "latent-objects",
        (*APPLY, "--latent", "obj.npy", "-o", "o.png"),
        "obj.npy: holds Python objects",
    ),
    Case(
        "latent-empty",
        (*APPLY, "--latent", "empty.npy", "-o", "o.png"),
        "empty.npy: holds no codes",
    ),
    Case(
        "latent-several",
        (*APPLY, "--latent", "codes.npy", "-o", "o.png"),
        "holds 2 codes; pick one with --index (0-1)",
    ),
    Case(
        "latent-index-out-of-range",
        (*APPLY, "--latent", "codes.npy", "--index", "7", "-o", "o.png"),
        "--index 7 out of range",
    ),
    Case(
        "latent-nan", (*APPLY, "--latent", "nan.npy", "--index", "0", "-o", "o.png"), "NaN or inf"
    ),
    Case(
        "latent-float64-overflow",
        (*APPLY, "--latent", "f64big.npy", "--index", "0", "-o", "o.png"),
        "too large for float32",
    ),
    Case(
        "latent-zero-bytes", (*APPLY, "--latent", "zero_bytes.npy", "-o", "o.png"), "zero_bytes.npy"
    ),
    Case("latent-is-a-pickle", (*APPLY, "--latent", "evil.pkl", "-o", "o.png"), "evil.pkl"),
    Case(
        "latent-and-seed",
        (*APPLY, "--latent", "w.npy", "--seed", "1", "-o", "o.png"),
        "give exactly one of",
    ),
    Case(
        "anchors-integers",
        ("discover", "latents", "int.npy", "-o", "d.safetensors"),
        "must be floating point",
    ),
    Case("anchors-nan", ("discover", "latents", "nan.npy", "-o", "d.safetensors"), "NaN or inf"),
    Case(
        "anchors-truncated",
        ("discover", "latents", "trunc.npy", "-o", "d.safetensors"),
        "corrupt or truncated",
    ),
    Case(
        "anchors-objects",
        ("discover", "latents", "obj.npy", "-o", "d.safetensors"),
        "holds Python objects",
    ),
    # --- checkpoints and micromotion files ---------------------------------------------------
    Case(
        "generator-hostile-pickle-pt",
        ("generate", "--generator", "evil.pt", "--outdir", "g"),
        "refused to load objects that are not plain data (posix.system)",
    ),
    Case(
        "generator-hostile-pkl",
        ("generate", "--generator", "evil.pkl", "--outdir", "g"),
        "evil.pkl",
    ),
    Case(
        "generator-garbage-pkl",
        ("generate", "--generator", "garbage.pkl", "--outdir", "g"),
        "garbage.pkl",
    ),
    Case("generator-html-page", ("generate", "--generator", "html.pt", "--outdir", "g"), "html.pt"),
    Case(
        "generator-truncated-safetensors",
        ("generate", "--generator", "trunc.safetensors", "--outdir", "g"),
        "trunc.safetensors",
    ),
    Case(
        "generator-missing",
        ("generate", "--generator", "missing.pt", "--outdir", "g"),
        "missing.pt: no such file",
    ),
    Case(
        "generator-directory",
        ("generate", "--generator", "adir", "--outdir", "g"),
        "adir: is a directory",
    ),
    Case(
        "generator-unknown-name",
        ("generate", "--generator", "nosuchnet", "--outdir", "g"),
        "not a zoo name",
    ),
    Case(
        "micromotion-hostile",
        ("apply", "evil.pt", *GEN, "--seed", "1", "-o", "o.png"),
        "refused to load objects",
    ),
    Case(
        "micromotion-is-a-generator",
        ("apply", "gen.safetensors", *GEN, "--seed", "1", "-o", "o.png"),
        "gen.safetensors",
    ),
    Case(
        "micromotion-garbage",
        ("apply", "garbage.bin", *GEN, "--seed", "1", "-o", "o.png"),
        "garbage.bin",
    ),
    Case("info-hostile", ("info", "evil.pt"), "refused to load objects"),
    Case(
        "import-official-hostile",
        ("import-official", "evil.pt", "-o", "i.safetensors"),
        "refused to load objects",
    ),
    Case("convert-hostile", ("convert", "evil.pt", "c.safetensors"), "refused to load objects"),
    Case(
        "clip-hostile-weights",
        (
            *TEXT_FAST[:-4],
            "--clip",
            "ViT-B-32-quickgelu:evil.pt",
            "--degrees",
            "no,100%",
            "--steps",
            "2",
            "-o",
            "t.safetensors",
        ),
        "refused to load objects that are not plain data (posix.system)",
    ),
    Case(
        "clip-garbage-weights",
        (
            *TEXT_FAST[:-4],
            "--clip",
            "clip.json:garbage.bin",
            "--degrees",
            "no,100%",
            "--steps",
            "2",
            "-o",
            "t.safetensors",
        ),
        "garbage.bin",
    ),
    Case(
        "id-weights-hostile",
        (*TEXT_FAST, "--id-weights", "evil.pt", "-o", "t.safetensors"),
        "refused to load objects",
    ),
    # --- images and videos ----------------------------------------------------------------------
    Case(
        "image-bomb",
        (*APPLY, "--image", "bomb.png", "--no-align", "-o", "o.mp4"),
        "144 MP, over the limit of 100 MP",
    ),
    Case(
        "image-bomb-invert",
        ("invert", "bomb.png", *GEN, "--no-align", "-o", "inv"),
        "over the limit",
    ),
    Case("image-bomb-align", ("align", "bomb.png", "-o", "al"), "over the limit"),
    Case(
        "image-limit-env-garbage",
        (*APPLY, "--image", "a.png", "--no-align", "-o", "o.mp4"),
        "MICROMOTION_MAX_PIXELS='lots'",
        env={"MICROMOTION_MAX_PIXELS": "lots"},
    ),
    Case(
        "image-not-an-image",
        ("invert", "notimage.png", *GEN, "--no-align", "-o", "inv"),
        "notimage.png: not a readable image",
    ),
    Case("image-empty", ("invert", "empty.png", *GEN, "--no-align", "-o", "inv"), "empty.png"),
    Case("image-directory", (*APPLY, "--image", "adir", "-o", "o.mp4"), "adir", code=2),
    Case("align-not-an-image", ("align", "notimage.png", "-o", "al"), "notimage.png"),
    Case(
        "video-not-a-video",
        ("discover", "video", "notvideo.mp4", *GEN, "-o", "v.safetensors"),
        "notvideo.mp4",
    ),
    Case(
        "video-missing",
        ("discover", "video", "nothere.mp4", *GEN, "-o", "v.safetensors"),
        "nothere.mp4",
    ),
    Case(
        "video-too-few-frames",
        ("discover", "video", "clip.mp4", *GEN, "--every", "3", "-o", "v.safetensors"),
        "only 2 usable frame(s), need at least 3",
    ),
    # --- templates and options --------------------------------------------------------------------
    Case(
        "template-without-slot",
        (
            "discover",
            "text",
            "--template",
            "a smile",
            *GEN,
            "--clip",
            "clip.json:clip.pt",
            "-o",
            "t.safetensors",
        ),
        "{degree}",
    ),
    Case(
        "template-empty-degree", (*TEXT, "--degrees", "no,,100%", "-o", "t.safetensors"), "degree"
    ),
    Case(
        "text-seed-and-latent",
        (*TEXT_FAST, "--seed", "3", "--latent", "w.npy", "-o", "t.safetensors"),
        "not both",
    ),
    Case(
        "text-id-weights-missing",
        (*TEXT_FAST, "--id-weights", "nope.pth", "-o", "t.safetensors"),
        "nope.pth",
    ),
    Case(
        "clip-spec-without-colon",
        (*TEXT_FAST[:-4], "--clip", "ViT-B-32", "-o", "t.safetensors"),
        "expected MODEL:WEIGHTS",
    ),
    Case("unknown-option", ("generate", *GEN, "--bogus"), "No such option", code=2),
    Case("unknown-command", ("animate",), "No such command", code=2),
    Case("zoo-unknown-name", ("zoo", "download", "nosuchthing"), "nosuchthing"),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file (hidden ones too) and directory below ``root``: content hash or ``dir``."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _run_case(case: Case, workspace: Path, root: Path, monkeypatch) -> tuple[int, str, str]:
    shutil.copytree(workspace, root, symlinks=True)
    if case.setup is not None:
        case.setup(root)
    before = _snapshot(root)
    monkeypatch.chdir(root)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, list(case.args), catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{case.id}: {type(result.exception).__name__}: {result.exception}"
    )
    assert _snapshot(root) == before, f"{case.id}: files changed: {result.stderr}"
    assert not (root / "PWNED").exists()
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_line_and_leaves_everything_as_it_was(
    case, workspace, tmp_path, monkeypatch
):
    code, _, stderr = _run_case(case, workspace, tmp_path / "ws", monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == case.code, (case.id, code, stderr)
    assert len(lines) == 1, (case.id, stderr)
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert case.says in lines[0], (case.id, lines[0])


def test_the_table_covers_the_issue():
    """At least 60 cases, over every command."""
    assert len(CASES) >= 60
    commands = {c.args[0] for c in CASES}
    assert {
        "apply",
        "invert",
        "align",
        "generate",
        "discover",
        "convert",
        "info",
        "zoo",
    } <= commands
    assert len({c.id for c in CASES}) == len(CASES)


def test_a_saturating_strength_is_a_warning_not_an_error(workspace, tmp_path, monkeypatch):
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, [*APPLY, "--seed", "1", "--strength", "1e6", "-o", "o.png"])
    assert result.exit_code == 0, result.output
    assert "warning: strength 1e+06 saturates the clip" in result.stderr
    assert (root / "o.png").is_file() and (root / "o.png.json").is_file()


def test_a_second_run_into_a_busy_directory_is_refused(workspace, tmp_path, monkeypatch):
    """One writer per output directory: a run that holds it keeps the next one out."""
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    (root / "g").mkdir()
    before = _snapshot(root)
    monkeypatch.chdir(root)
    fd = os.open(root / "g", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running `generate --outdir g` holds
        busy = CliRunner().invoke(main, ["generate", *GEN, "--outdir", "g"])
    finally:
        os.close(fd)
    assert busy.exit_code == 1, busy.output
    assert busy.stderr.strip().startswith("error: g: another micromotion run is writing")
    assert _snapshot(root) == before
    assert CliRunner().invoke(main, ["generate", *GEN, "--outdir", "g"]).exit_code == 0
    names = {p.name for p in (root / "g").iterdir()}
    assert names == {"generate.json", "latents.npy", *(f"seed000{i}.png" for i in range(4))}


# --- signals: the real console script in a subprocess ----------------------------------------


def _render_then_signal(root: Path, signum: int) -> subprocess.CompletedProcess[str]:
    """Start a long render, wait until its temporary file exists, then send ``signum``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "micromotion", *APPLY, "--seed", "1", "--frames", "10000",
         "--batch-size", "4", "-o", "long.mp4"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell without job control starts background commands with SIGINT ignored, and
        # Python keeps an ignored SIGINT: the render would run on as a user's Ctrl-C never can.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(root.glob(".long.mp4.*.part")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the render never started"
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the render
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM, "interrupted (SIGTERM)"),
        (signal.SIGHUP, 128 + signal.SIGHUP, "interrupted (SIGHUP)"),
        (signal.SIGINT, 130, "interrupted"),
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_a_signal_during_a_render_leaves_nothing(signum, code, line, workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    before = _snapshot(root)
    done = _render_then_signal(root, signum)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == code, done.stderr
    assert lines == [line], done.stderr
    assert _snapshot(root) == before  # no .part file, no clip, no record


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    """An interrupt while the modules are still loading: exit 130, one line, no traceback."""
    code = (
        "import sys\n"
        "from micromotion import _entry\n"
        "import builtins\n"
        "real = builtins.__import__\n"
        "def interrupted(name, *a, **k):\n"
        "    if name == 'micromotion.cli':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = interrupted\n"
        "sys.argv = ['micromotion', '--help']\n"
        "_entry.run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "interrupted" and "Traceback" not in done.stderr


def test_garbage_in_the_cache_is_one_line_and_not_trusted(default_zoo, closed_port, tmp_path):
    """`zoo download` of an entry trusted on first use, with an HTML page in its place."""
    from helpers import zoo_entry
    from micromotion import hub

    entry = zoo_entry(
        [f"http://127.0.0.1:{closed_port}/g.safetensors"], name="tinygen", filename="g.safetensors"
    )
    default_zoo.register(entry)
    path = hub.cache_path(entry)
    path.parent.mkdir(parents=True)
    path.write_text("<html>quota exceeded</html>")
    result = CliRunner().invoke(main, ["zoo", "download", "tinygen", "--quiet"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "not a usable generator file, so it was not trusted" in lines[0]
    assert not path.exists() and not path.with_name("g.safetensors.json").exists()
    assert path.with_name("g.safetensors.corrupt").read_text().startswith("<html>")
