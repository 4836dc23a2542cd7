"""``micromotion discover text``: a micromotion from a text template, with CLIP anchors.

Testing hook: ``--clip`` accepts ``MODEL.json:WEIGHTS`` — an open_clip model-config JSON
and a local weights file — so a tiny random CLIP saved by a test runs this command end to
end, exactly as a user would run it with ``ViT-B-32-quickgelu:/path/to/weights.bin``.
"""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from micromotion._io import provenance, require_file, sha256_file
from micromotion.anchors._output import check_output, write_discovery
from micromotion.anchors.text import (
    DEFAULT_DEGREES,
    TextAnchorConfig,
    format_prompts,
    parse_degrees,
    text_anchors,
)
from micromotion.cli._common import (
    decomposition_options,
    device_option,
    generator_option,
    parse_rank,
    resolve_device,
    truncation_option,
)
from micromotion.clip import DEFAULT_CLIP
from micromotion.errors import MicromotionError
from micromotion.seeds import MAX_SEED


@click.command("text")
@click.option(
    "--template",
    required=True,
    metavar="TEXT",
    help="Prompt with a {degree} slot, e.g. 'a person with {degree} smile'.",
)
@generator_option
@click.option(
    "--clip",
    "clip_spec",
    default=DEFAULT_CLIP,
    show_default=True,
    metavar="MODEL:WEIGHTS",
    help="open_clip model:tag, MODEL:/path/weights, or CONFIG.json:/path/weights.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Start face  [default: 1, the paper's]",
)
@click.option(
    "--latent",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Start from this W+ code (.npy) instead of --seed.",
)
@click.option("--index", type=int, default=None, help="Row of --latent when it holds several.")
@truncation_option
@click.option(
    "--degrees",
    default=",".join(DEFAULT_DEGREES),
    show_default=True,
    metavar="LIST",
    help="Degree words in motion order, comma-separated.",
)
@click.option("--steps", type=click.IntRange(1, 100_000), default=40, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 10, min_open=True), default=0.1, show_default=True)
@click.option("--l2-lambda", type=click.FloatRange(0, 1e6), default=0.008, show_default=True)
@click.option("--id-lambda", type=click.FloatRange(0, 1e6), default=0.005, show_default=True)
@click.option(
    "--id-weights",
    type=click.Path(path_type=Path),
    default=None,
    metavar="IR_SE50.pth",
    help="ArcFace IR-SE50 weights (model_ir_se50.pth) for the identity loss; off without.",
)
@click.option(
    "--clip-normalize/--paper-clip-input",
    default=True,
    show_default=True,
    help="Normalise images as CLIP expects, or feed raw [-1, 1] pixels as the paper's code.",
)
@decomposition_options
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=None,
    help="Degrees optimised together (default: all; lower only to save memory).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.safetensors",
)
@device_option
def discover_text(
    template: str,
    generator_spec: str,
    clip_spec: str,
    seed: int | None,
    latent: Path | None,
    index: int | None,
    truncation: float,
    degrees: str,
    steps: int,
    lr: float,
    l2_lambda: float,
    id_lambda: float,
    id_weights: Path | None,
    clip_normalize: bool,
    rank: str,
    method: str | None,
    layers: str | None,
    name: str | None,
    batch_size: int | None,
    output: Path,
    device: str,
) -> None:
    """Optimise one face toward TEMPLATE at each degree (CLIP), then decode the micromotion.

    Writes OUT.safetensors, OUT_anchors.npy, OUT_strip.png and OUT.json.
    """
    # Everything the user can get wrong is checked before any network is loaded.
    output = check_output(output)
    degree_words = parse_degrees(degrees)
    prompts = format_prompts(template, degree_words)
    rank_value = parse_rank(rank)
    if id_weights is not None:
        require_file(id_weights, what="an IR-SE50 weights file")
    if index is not None and latent is None:
        raise MicromotionError("--index picks a row of --latent; give --latent W.npy")
    if latent is not None:
        if seed is not None:
            raise MicromotionError("give --seed N or --latent W.npy, not both")
        require_file(latent, what="a .npy code")
    seed = 1 if seed is None else seed
    config = TextAnchorConfig(
        template=template,
        degrees=degree_words,
        steps=steps,
        lr=lr,
        l2_lambda=l2_lambda,
        id_lambda=id_lambda,
        truncation_psi=truncation,
        seed=seed,
        clip_normalize=clip_normalize,
        batch_size=batch_size,
    )
    torch_device = resolve_device(device)

    # CLIP first: missing weights (offline) must fail before the generator is read.
    from micromotion.clip import load_clip

    clip = load_clip(clip_spec, device=torch_device)
    id_model = None
    if id_weights is None:
        click.echo(
            "note: no --id-weights given: the identity loss is off "
            "(the paper uses ArcFace IR-SE50, model_ir_se50.pth)",
            err=True,
        )
    elif id_lambda > 0:
        from micromotion.networks.irse import IdentityLoss, load_irse50

        id_model = IdentityLoss(load_irse50(id_weights, device=torch_device))

    from micromotion.checkpoints import load_generator

    G = load_generator(generator_spec, device=torch_device)
    if layers is not None:
        from micromotion.subspace import layer_mask

        layer_mask(layers, G.num_ws)  # a bad --layers fails before the optimisation
    fingerprint = G.fingerprint()
    start_ws = None
    if latent is not None:
        from micromotion.cli.apply import load_latent

        start_ws = load_latent(latent, index, num_ws=G.num_ws, w_dim=G.w_dim)

    batches = -(-len(prompts) // (batch_size or len(prompts)))
    with tqdm(total=steps * batches, desc="text anchors", unit="step", disable=None) as bar:
        result = text_anchors(
            G,
            clip,
            prompts,
            config=config,
            start_ws=start_ws,
            id_model=id_model,
            callback=lambda _step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")),
        )

    from micromotion.direction import Micromotion

    mm_name = name or output.name.removesuffix(".safetensors")
    settings = config.to_dict()
    if latent is not None:  # neither was used: do not record them as if they had been
        settings.update(seed=None, truncation_psi=None)
    metadata = {
        "template": template,
        "degrees": list(degree_words),
        "prompts": prompts,
        "clip": clip_spec,
        "seed": None if latent is not None else seed,
        "truncation_psi": None if latent is not None else truncation,
        "identity_loss": id_model is not None,
    }
    try:
        mm = Micromotion.from_anchors(
            result.anchors,
            rank=rank_value,
            method=method,
            layers=layers,
            name=mm_name,
            source="text",
            generator_fingerprint=fingerprint,
            metadata=metadata,
        )
    except MicromotionError as exc:
        raise MicromotionError(f"decomposing the text anchors: {exc}") from None
    record = provenance(
        command="discover text",
        name=mm_name,
        template=template,
        degrees=list(degree_words),
        prompts=prompts,
        anchors="start code, then one optimised code per prompt",
        start={"latent": str(latent), "index": index}
        if latent is not None
        else {"seed": seed, "truncation_psi": truncation},
        settings=settings,
        rank=rank_value,
        method=mm.metadata["method"],
        layers=mm.metadata["layers"],
        clip=clip_spec,
        clip_weights_sha256=clip.weights_sha256,
        generator=generator_spec,
        generator_fingerprint=fingerprint,
        id_weights=str(id_weights) if id_weights is not None else None,
        id_weights_sha256=sha256_file(id_weights) if id_weights is not None else None,
        identity_loss=id_model is not None,
        clip_loss_start=[round(float(v), 6) for v in result.start_clip_loss],
        clip_loss_final=[round(float(v), 6) for v in result.clip_loss],
    )
    paths = write_discovery(
        output, micromotion=mm, anchors=result.anchors, strip_images=result.images, record=record
    )
    click.echo(
        f"wrote {paths['micromotion']} (|d| = {mm.masked_direction.norm():.4g}, "
        f"rank {mm.metadata['rank']}, {result.anchors.shape[0]} anchors), "
        f"{paths['anchors'].name}, {paths['strip'].name}, {paths['record'].name}"
    )
