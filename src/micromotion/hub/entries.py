"""The zoo's table: every network, direction and weight file micromotion can download.

This file is data: adding an asset means adding a row here. Each entry says where the asset
lives (mirrors tried in order), its sha256 where its publisher gives one (never invented;
``None`` means trust on first use), its format, license and origin. The mechanism (lookup,
cache, verified downloads) lives in :mod:`.registry` and :mod:`.cache`.
"""

from __future__ import annotations

from micromotion.hub.registry import Zoo, ZooEntry

_NGC_SG2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
#: NVIDIA's original TensorFlow release, listed in the NVlabs/stylegan2 README ("networks").
_TF_SG2 = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
#: rosinality's conversion of the TF FFHQ config-f network, the file the paper's code,
#: StyleCLIP, pSp, e4e and ReStyle load (their READMEs link this Google Drive id).
_ROSINALITY_FFHQ_DRIVE = "1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT"
_UNVERIFIED = (
    "; not verified to be the paper's network: compare with `micromotion info A B` "
    "against stylegan2-ffhq-config-f"
)
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NV_LICENSE = "NVIDIA Source Code License-NC (non-commercial)"
_PAPER_RAW = "https://github.com/wuqiuche/micromotion-styleGAN/raw/main/pregen_latents/"
_PAPER_ORIGIN = (
    "Wu et al., Decoding Micromotion in Low-dimensional Latent Spaces from StyleGAN "
    "(CPAL 2024); github.com/wuqiuche/micromotion-styleGAN, (c) 2022 Qiucheng Wu"
)


def _nvidia(
    name: str, file: str, res: int, description: str, *, base: str, aliases: tuple[str, ...] = ()
) -> ZooEntry:
    source = (
        "NVlabs/stylegan3 README" if base == _NGC_SG2 else "NVlabs/stylegan2-ada-pytorch README"
    )
    return ZooEntry(
        name=name,
        kind="generator",
        urls=(base + file,),
        filename=file if base == _NGC_SG2 else f"stylegan2-ada-{file}",
        sha256=None,  # NVIDIA publishes no hashes: trust on first use
        format="nvidia-pkl",
        license=_NV_LICENSE,
        origin=f"Karras et al.; URL listed in the {source}",
        description=description,
        resolution=res,
        aliases=aliases,
    )


_LPIPS_RAW = "lpips/weights/v0.1/vgg.pth"
_LPIPS_ORIGIN = (
    "Zhang et al., The Unreasonable Effectiveness of Deep Features as a Perceptual Metric "
    "(CVPR 2018); github.com/richzhang/PerceptualSimilarity (also shipped in the PyPI lpips "
    "package as lpips/weights/v0.1/vgg.pth), (c) 2018 Richard Zhang, Phillip Isola, "
    "Alexei A. Efros, Eli Shechtman, Oliver Wang"
)


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?id={file_id}&export=download"


def _encoder(
    name: str, filename: str, ids: tuple[str, ...], origin: str, description: str
) -> ZooEntry:
    return ZooEntry(
        name=name,
        kind="encoder",
        urls=tuple(_drive(i) for i in ids),
        filename=filename,
        sha256=None,  # no published hash: trust on first use (checked as an encoder first)
        format="psp-checkpoint",
        license="MIT (encoder); its decoder.* is NVIDIA's FFHQ StyleGAN2 (" + _NV_LICENSE + ")",
        origin=origin,
        description=description,
        resolution=1024,
    )


def _direction(name: str, sha256: str, description: str) -> ZooEntry:
    return ZooEntry(
        name=name,
        kind="direction",
        urls=(f"{_PAPER_RAW}{name}/d_latent",),
        filename=f"{name}.d_latent.pt",
        sha256=sha256,
        format="official-direction",
        license="MIT",
        origin=_PAPER_ORIGIN,
        description=description,
        resolution=1024,
    )


DEFAULT_ZOO: Zoo = Zoo(
    [
        ZooEntry(
            name="stylegan2-ffhq-config-f",
            kind="generator",
            urls=(_TF_SG2 + "stylegan2-ffhq-config-f.pkl",),
            filename="stylegan2-ffhq-config-f.pkl",
            sha256=None,  # NVIDIA publishes no hashes: trust on first use
            format="tensorflow-pkl",
            license=_NV_LICENSE,
            origin="Karras et al., StyleGAN2 (CVPR 2020); URL in the NVlabs/stylegan2 README",
            description=(
                "StyleGAN2 config-f FFHQ 1024 px, NVIDIA's original TensorFlow release: the "
                "paper's network (its code loads rosinality's conversion of this file)"
            ),
            resolution=1024,
            aliases=("ffhq",),
        ),
        ZooEntry(
            name="stylegan2-ffhq-config-f-rosinality",
            kind="generator",
            urls=(
                f"https://drive.google.com/uc?id={_ROSINALITY_FFHQ_DRIVE}&export=download",
                f"https://drive.usercontent.google.com/download?id={_ROSINALITY_FFHQ_DRIVE}"
                "&export=download",
            ),
            filename="stylegan2-ffhq-config-f.pt",
            sha256=None,  # no published hash: trust on first use
            format="rosinality-pt",
            license=_NV_LICENSE,
            origin=(
                "rosinality/stylegan2-pytorch convert_weight.py of NVIDIA's TF network; Google "
                "Drive id from the pSp, e4e and ReStyle READMEs"
            ),
            description=(
                "rosinality's conversion of stylegan2-ffhq-config-f (the file the paper's code "
                "loads; Google Drive, often over quota)"
            ),
            resolution=1024,
            aliases=("ffhq-rosinality",),
        ),
        _nvidia(
            "stylegan2-ffhq-1024",
            "stylegan2-ffhq-1024x1024.pkl",
            1024,
            "StyleGAN2 FFHQ 1024 px, PyTorch re-release on NVIDIA NGC" + _UNVERIFIED,
            base=_NGC_SG2,
        ),
        _nvidia(
            "stylegan2-ffhq-512",
            "stylegan2-ffhq-512x512.pkl",
            512,
            "StyleGAN2 FFHQ 512 px",
            base=_NGC_SG2,
        ),
        _nvidia(
            "stylegan2-ffhq-256",
            "stylegan2-ffhq-256x256.pkl",
            256,
            "StyleGAN2 FFHQ 256 px",
            base=_NGC_SG2,
        ),
        _nvidia(
            "stylegan2-metfaces-1024",
            "stylegan2-metfaces-1024x1024.pkl",
            1024,
            "StyleGAN2 MetFaces 1024 px (portraits from art)",
            base=_NGC_SG2,
            aliases=("metfaces",),
        ),
        _nvidia(
            "stylegan2-ada-ffhq-1024",
            "ffhq.pkl",
            1024,
            "FFHQ 1024 px from the stylegan2-ada-pytorch release" + _UNVERIFIED,
            base=_ADA,
        ),
        _nvidia(
            "stylegan2-ada-metfaces-1024",
            "metfaces.pkl",
            1024,
            "MetFaces 1024 px, ADA transfer from FFHQ",
            base=_ADA,
        ),
        _direction(
            "smile",
            "f91b21a9c9bf17b49799e873c1864118d9e72510769c112e8e553aca1d6a3fd4",
            "the paper's smile direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "angry",
            "5132218d645ef613a9148958c5286cb8b879f60c6a3145a753639f304a38f9ff",
            "the paper's anger direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "aging",
            "b00d9bb8ab03da8d63c1b0bea89bf7e2da7c36d0a049ba10c56c7432e865fdaf",
            "the paper's ageing direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "eyesClose",
            "8d73d5175eb69fd1797fc1e6fb632d2dd51689877b0dd0241f8be2f92b6aa0fd",
            "the paper's eye-closing direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "headsTurn",
            "00452120b2d87dd79ac05557238970abcbdf6157819283c260944912e5e80c61",
            "the paper's head-turn direction, from video (FFHQ W+, 18x512)",
        ),
        _encoder(
            "restyle-psp-ffhq",
            "restyle_psp_ffhq_encode.pt",
            # The ReStyle README's id, then the copy JoJoGAN's and ArcaneGAN's download lists use.
            ("1sw6I2lRIB0MpuJkpc8F5BJiSZrc0hjfE", "1nbxCIVw9H3YnQsoIPykNEFwWJnHVHlVd"),
            "Alaluf et al., ReStyle (ICCV 2021); Drive id from the yuval-alaluf/restyle-encoder "
            "README",
            "ReStyle-pSp FFHQ encoder, 5 iterations: the paper's inverter",
        ),
        _encoder(
            "restyle-e4e-ffhq",
            "restyle_e4e_ffhq_encode.pt",
            ("1e2oXVeBPXMQoUoC_4TNwAWpOPpSEhE_e",),
            "Alaluf et al., ReStyle (ICCV 2021); Drive id from the yuval-alaluf/restyle-encoder "
            "README",
            "ReStyle-e4e FFHQ encoder (more editable codes than ReStyle-pSp)",
        ),
        _encoder(
            "e4e-ffhq",
            "e4e_ffhq_encode.pt",
            ("1cUv_reLE6k3604or78EranS7XzuVMWeO", "1o6ijA3PkcewZvwJJ73dJ0fxhndn0nnh7"),
            "Tov et al., Designing an Encoder for StyleGAN Image Manipulation (SIGGRAPH 2021); "
            "Drive id from the omertov/encoder4editing README",
            "e4e FFHQ encoder, one pass",
        ),
        _encoder(
            "psp-ffhq",
            "psp_ffhq_encode.pt",
            ("1bMTNWkh5LArlaWSc_wa8VKyq2V42T2z0",),
            "Richardson et al., pixel2style2pixel (CVPR 2021); Drive id from the "
            "eladrich/pixel2style2pixel README",
            "pSp FFHQ encoder for StyleGAN inversion, one pass",
        ),
        ZooEntry(
            name="vgg16-imagenet",
            kind="lpips",
            urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
            filename="vgg16-397923af.pth",
            # torchvision publishes only the first 8 hex digits (in the file name). The full
            # digest is the one independent projects record and check for this download
            # (e.g. Disco Diffusion's model loader); it begins with that published prefix.
            sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
            format="torchvision-state-dict",
            license="BSD-3-Clause (torchvision)",
            origin=(
                "torchvision (pytorch/vision) VGG16_Weights.IMAGENET1K_V1, trained on ImageNet "
                "(torchvision notes that weights may carry their training data's terms); "
                "architecture: Simonyan & Zisserman, ICLR 2015"
            ),
            description="VGG16 ImageNet weights, the LPIPS-VGG trunk (528 MB; conv layers used)",
        ),
        ZooEntry(
            name="lpips-vgg-v0.1",
            kind="lpips",
            urls=(
                f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/{_LPIPS_RAW}",
                f"https://github.com/richzhang/PerceptualSimilarity/raw/master/{_LPIPS_RAW}",
            ),
            filename="lpips-vgg-v0.1.pth",
            # sha256 of the same bytes in the PyPI lpips 0.1.4 package.
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            format="lpips-linear",
            license="BSD-2-Clause",
            origin=_LPIPS_ORIGIN,
            description="LPIPS v0.1 linear layers calibrated on human judgements, VGG trunk",
        ),
    ]
)
"""The registry the CLI, :func:`fetch` and :func:`resolve` use unless given another."""


def default_registry() -> Zoo:
    """The registry in force: :data:`DEFAULT_ZOO`, looked up at call time (tests swap it)."""
    return DEFAULT_ZOO
