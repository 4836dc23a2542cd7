"""The Gradio page: three tabs, each button one pipeline call, every user error one message.

Nothing here computes: photos and videos are checked by :mod:`micromotion.pipelines.preview`,
clips rendered by :func:`~micromotion.pipelines.animate.animate`, micromotions decoded by
:mod:`micromotion.pipelines.discover` and described by :mod:`micromotion.pipelines.inspect`.
What this module adds is the page, the mapping of the pipelines' ``progress(stage, done,
total, note)`` onto :class:`gradio.Progress`, and the wording of errors in the page's terms.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

import gradio as gr

from micromotion import hub
from micromotion.anchors.text import TextAnchorConfig, parse_degrees
from micromotion.anchors.video import VideoAnchorConfig
from micromotion.core.defaults import DEFAULT_DEGREES
from micromotion.core.progress import Progress
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.pipelines import preview
from micromotion.pipelines._load import open_generator
from micromotion.pipelines.animate import DEFAULT_STRENGTH, ClipSettings, PhotoSettings, animate
from micromotion.pipelines.discover import Decomposition, discover_text, discover_video, parse_rank
from micromotion.pipelines.inspect import describe, describe_generator, kind_of
from micromotion.pipelines.photo import InverterSettings
from micromotion.web.config import WebConfig
from micromotion.web.sessions import SessionFiles
from micromotion.weights.micromotion import PACKAGED_DIRECTIONS

_log = logging.getLogger("micromotion.web")
#: The package's directory: warnings raised from files inside it are shown in the page.
_PACKAGE = Path(__file__).resolve().parents[1]

#: The page's name for each library parameter a ParameterError may name.
LABELS = {
    "strengths": "Strength",
    "frames": "Frames",
    "fps": "FPS",
    "layers": "Layers",
    "loop": "Ping-pong",
    "paste_back": "Paste back",
    "align": "Align the face",
    "face": "Face",
    "steps": "Steps",
    "next_steps": "Steps per next frame",
    "inverter": "Inverter",
    "iterations": "Iterations",
    "refine": "Refine steps",
    "alignment": "Alignment",
    "seed": "Seed",
    "truncation_psi": "Truncation",
    "template": "Template",
    "degrees": "Degrees",
    "rank": "Rank",
    "name": "Name",
    "image": "Photo",
    "video": "Video",
}

#: What each pipeline stage counts, for the progress bar's unit.
UNITS = {"render": "frames", "decode": "frames", "align": "frames"}

#: Dropdown value meaning "the file uploaded beside the dropdown".
UPLOADED = "uploaded file"
PHOTO, SEED = "Photo", "Sampled face (seed)"
#: Micromotion files the page accepts (read by the safe loaders: safetensors, or a
#: ``weights_only`` torch tensor; never a pickle).
MICROMOTION_SUFFIXES = (".safetensors", ".pt", ".pth")

THEME_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
CSS = """
.mm-note { font-size: 0.9em; opacity: 0.8; }
footer { display: none !important; }
"""


# ---------------------------------------------------------------------------------------------
# Errors, warnings and progress
# ---------------------------------------------------------------------------------------------


def _tidy(message: str, paths: Sequence[str | Path | None]) -> str:
    """Replace the server's temporary paths in a message by the names the user knows."""
    for path in paths:
        if path:
            p = Path(path)
            message = message.replace(str(p), p.name)
    return message


#: The warnings list of the job running in this context (``None`` outside a job).
_job_warnings: ContextVar[list[warnings.WarningMessage] | None] = ContextVar(
    "micromotion_job_warnings", default=None
)
_hook_lock = threading.Lock()
#: What showed warnings before :func:`_route_warnings` put :func:`_show` in its place.
_shown_before: list[Callable[..., None]] = []


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while the web app runs: to the job's list, or as before."""
    sink = _job_warnings.get()
    if sink is not None:
        sink.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
    elif _shown_before:
        _shown_before[-1](message, category, filename, lineno, file, line)


def _route_warnings() -> None:
    """Make sure each warning goes to the job that raised it.

    ``warnings.catch_warnings`` swaps process-wide state: with several jobs at once
    (``--concurrency``) one job's warning reached another's page, or was lost when the other
    restored the state. Instead one hook, :func:`_show`, reads the running job from a context
    variable (Gradio runs each job in a worker thread with its own copy of the context), and
    warnings outside a job go where they went before. It is put back if something (a test
    harness) restored another hook since.
    """
    with _hook_lock:
        if warnings.showwarning is not _show:
            _shown_before[:] = [warnings.showwarning]
            warnings.showwarning = _show
        # Every occurrence, not once per code location: each job's page gets its own.
        warnings.filterwarnings("always", category=UserWarning, module=r"micromotion\b")


@contextmanager
def job_warnings(sink: list[warnings.WarningMessage]) -> Iterator[None]:
    """Collect into ``sink`` the warnings raised in this context (this job's thread) only.

    Args:
        sink: The list the warnings are appended to.
    """
    _route_warnings()
    token = _job_warnings.set(sink)
    try:
        yield
    finally:
        _job_warnings.reset(token)


@contextmanager
def _shown(*paths: str | Path | None) -> Iterator[None]:
    """Show the library's errors and warnings in the page, never a traceback.

    A :class:`MicromotionError` becomes a :class:`gradio.Error` (a ParameterError reworded
    with the page's labels); anything else is logged with its traceback on the server and
    shown as one line. Warnings (a saturated clip, a micromotion from another network)
    become :class:`gradio.Warning` toasts.
    """
    caught: list[warnings.WarningMessage] = []
    with job_warnings(caught):
        try:
            yield
        except gr.Error:
            raise
        except ParameterError as exc:
            labels = {k: f"“{v}”" for k, v in LABELS.items()}
            raise gr.Error(_tidy(exc.render(labels), paths), title="Please check") from None
        except MicromotionError as exc:
            raise gr.Error(_tidy(str(exc), paths), title="Please check") from None
        except Exception as exc:
            _log.exception("a job failed")
            raise gr.Error(
                f"internal error ({type(exc).__name__}: {_tidy(str(exc), paths)}); "
                "the server log has the details"
            ) from None
    for warning in caught:
        # Only the library's own warnings are the user's business; the rest (deprecations,
        # unclosed files in dependencies) go to the server log.
        if issubclass(warning.category, UserWarning) and _is_ours(warning.filename):
            gr.Warning(_tidy(str(warning.message), paths))
        else:
            _log.debug("warning: %s (%s:%s)", warning.message, warning.filename, warning.lineno)


def _is_ours(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_PACKAGE)


def _reporter(track: gr.Progress) -> Progress:
    """The pipelines' ``progress(stage, done, total, note)`` drawn as the page's bar."""

    def report(stage: str, done: int, total: int, note: str) -> None:
        track((done, total), desc=f"{stage} {note}".strip(), unit=UNITS.get(stage, "steps"))

    return report


def _stem(*parts: str) -> str:
    """A safe file stem from user-chosen names (the download's name)."""
    text = "_".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "micromotion"


def _limit(name: str, value: float, most: int) -> int:
    """A whole-number control, refused past the server's limit."""
    number = int(value)
    if number > most:
        raise ParameterError(name, f"{number}: this server allows at most {most}")
    return number


def _micromotion_spec(choice: str | None, upload: str | None) -> str:
    """The micromotion a dropdown and its upload name: a zoo name or the uploaded file."""
    if choice == UPLOADED or (upload and not choice):
        if not upload:
            raise MicromotionError("upload a micromotion file (.safetensors), or choose one")
        if Path(upload).suffix.lower() not in MICROMOTION_SUFFIXES:
            raise MicromotionError(
                f"{Path(upload).name}: not a micromotion file; upload a .safetensors "
                "(or one of the paper's d_latent .pt tensors)"
            )
        if kind_of(upload) != "micromotion":
            raise MicromotionError(f"{Path(upload).name}: a generator, not a micromotion")
        return upload
    if not choice:
        raise MicromotionError("choose a micromotion")
    return choice


def _micromotion_choices() -> list[tuple[str, str]]:
    """The shipped directions first, then the zoo's others, then the upload slot."""
    zoo = [e.name for e in hub.list_entries(kind="direction")]
    choices = [(f"{name} (shipped)", name) for name in PACKAGED_DIRECTIONS]
    choices += [
        (f"{name} (zoo: downloads once)", name) for name in zoo if name not in PACKAGED_DIRECTIONS
    ]
    return [*choices, ("uploaded file…", UPLOADED)]


def _inverter_choices() -> list[str]:
    return ["auto", "projector", *(e.name for e in hub.list_entries(kind="encoder"))]


def _summary_markdown(summary: dict[str, Any]) -> str:
    """A micromotion's summary as the Inspect tab's text."""
    meta = summary.get("metadata", {})
    lines = [
        f"### {summary['name']}",
        f"W+ [{summary['num_ws']}, {summary['w_dim']}] · |d| = {summary['norm']:.4g} · "
        f"layers {summary['layers']}"
        + (f" · {summary['num_anchors']} anchors" if "num_anchors" in summary else ""),
        "",
        "| field | value |",
        "|---|---|",
    ]
    for key, value in meta.items():
        if isinstance(value, dict | list):
            value = json.dumps(value)
        text = str(value).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {key} | {text[:200]} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The jobs: one pipeline call each
# ---------------------------------------------------------------------------------------------


class Jobs:
    """The page's handlers, bound to the app's settings and its session directories.

    Args:
        config: What the app serves and its limits.
        sessions: Where each session's files go.
    """

    def __init__(self, config: WebConfig, sessions: SessionFiles) -> None:
        self.config = config
        self.limits = config.limits
        self.sessions = sessions

    def check_photo(self, photo: str | None) -> str | None:
        """An uploaded photo: checked at once, shown as a preview."""
        if not photo:
            return None
        with _shown(photo):
            info = preview.check_photo(photo, max_pixels=self.limits.pixels)
            gr.Info(f"{Path(photo).name}: {info.width}×{info.height}")
        return photo

    def check_video(self, video: str | None) -> str:
        """An uploaded video: checked at once against the limits."""
        if not video:
            return ""
        with _shown(video):
            info = self._video_info(video)
        size = f"{info.width}×{info.height}"
        return f"{Path(video).name}: {info.num_frames} frames, {size}, {info.fps:g} fps"

    def _video_info(self, video: str) -> Any:
        return preview.check_video(
            video,
            max_seconds=self.limits.video_seconds,
            max_frames=self.limits.video_frames,
            max_pixels=self.limits.pixels,
        )

    def animate(
        self,
        source: str,
        photo: str | None,
        seed: float,
        truncation: float,
        choice: str | None,
        upload: str | None,
        strength: float,
        frames: float,
        fps: float,
        layers: str,
        pingpong: bool,
        paste_back: bool,
        align: bool,
        inverter: str,
        steps: float,
        iterations: float,
        refine: float,
        make_gif: bool,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's way to ask for a bar
    ) -> tuple[Any, ...]:
        """Animate a photo or a sampled face: ``pipelines.animate``, then a GIF of its clip."""
        with _shown(photo, upload):
            spec = _micromotion_spec(choice, upload)
            clip = ClipSettings(
                frames=_limit("frames", frames, self.limits.frames),
                fps=float(fps),
                layers=layers.strip() or None,
                loop="pingpong" if pingpong else "none",
            )
            start: dict[str, Any]
            if source == PHOTO:
                if not photo:
                    raise MicromotionError(f"upload a photo, or choose “{SEED}”")
                preview.check_photo(photo, max_pixels=self.limits.pixels)
                start = {
                    "image": photo,
                    "photo": PhotoSettings(
                        steps=_limit("steps", steps, self.limits.steps),
                        align=align,
                        paste_back=paste_back,
                        inverter=inverter or "auto",
                        iterations=int(iterations),
                        refine=int(refine),
                    ),
                }
                face = Path(photo).stem
            else:
                start = {"seed": int(seed), "truncation_psi": float(truncation)}
                face = f"seed{int(seed)}"
            job = self.sessions.job_dir(request.session_hash, "animate")
            out = job / f"{_stem(face, Path(spec).stem)}.mp4"
            began = time.perf_counter()
            done = animate(
                [spec],
                output=out,
                strengths=[float(strength)],
                generator=self.config.generator,
                clip=clip,
                device=self.config.device,
                progress=_reporter(progress),
                **start,
            )
            seconds = time.perf_counter() - began
            gif = preview.clip_to_gif(done.output, out.with_suffix(".gif")) if make_gif else None
        files = [done.output, gif, done.record_path]
        photo_files = done.photo_files or {}
        files += [photo_files[k] for k in ("latent", "aligned", "recon") if k in photo_files]
        text = f"**{done.total_frames} frames** at {clip.fps:g} fps in {seconds:.1f} s"
        if done.psnr is not None:
            text = f"Reconstruction PSNR **{done.psnr:.2f} dB** ({done.loss}) · " + text
        return (
            photo_files.get("aligned"),
            photo_files.get("recon"),
            text,
            done.output,
            [str(f) for f in files if f is not None],
        )

    def discover_text(
        self,
        template: str,
        degrees: str,
        seed: float,
        steps: float,
        rank: str,
        layers: str,
        name: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        """Text anchors with CLIP, then robust PCA: ``pipelines.discover.discover_text``."""
        with _shown():
            config = TextAnchorConfig(
                template=template,
                degrees=parse_degrees(degrees),
                seed=int(seed),
                steps=_limit("steps", steps, self.limits.steps),
            )
            decomposition = _decomposition(rank, layers, name)
            job = self.sessions.job_dir(request.session_hash, "discover-text")
            out = job / f"{_stem(name or 'text')}.safetensors"
            found = discover_text(
                output=out,
                generator=self.config.generator,
                config=config,
                clip=self.config.clip,
                id_weights=self.config.id_weights,
                decomposition=decomposition,
                device=self.config.device,
                progress=_reporter(progress),
            )
        return self._discovered(found, job)

    def discover_video(
        self,
        video: str | None,
        frames: float,
        steps: float,
        next_steps: float,
        align: bool,
        inverter: str,
        iterations: float,
        refine: float,
        rank: str,
        layers: str,
        name: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        """Video anchors by inversion, then robust PCA: ``pipelines.discover.discover_video``."""
        with _shown(video):
            if not video:
                raise MicromotionError("upload a video of one face performing the motion")
            self._video_info(video)
            config = VideoAnchorConfig(
                frames=int(frames),
                steps=_limit("steps", steps, self.limits.steps),
                next_steps=_limit("next_steps", next_steps, self.limits.steps),
            )
            decomposition = _decomposition(rank, layers, name)
            job = self.sessions.job_dir(request.session_hash, "discover-video")
            out = job / f"{_stem(name or Path(video).stem)}.safetensors"
            found = discover_video(
                video,
                output=out,
                generator=self.config.generator,
                config=config,
                align=align,
                inverter=InverterSettings(inverter or "auto", int(iterations), int(refine)),
                decomposition=decomposition,
                device=self.config.device,
                progress=_reporter(progress),
            )
        return self._discovered(found, job)

    def _discovered(self, found: Any, job: Path) -> tuple[Any, ...]:
        mm, files = found.micromotion, found.files
        with _shown():
            plot = preview.plot_micromotion(mm.summary(), job / "spectrum.png")
        text = (
            f"**{mm.name}**: |d| = {mm.norm:.4g}, rank {mm.metadata['rank']}, "
            f"{mm.num_anchors} anchors"
        )
        if found.median_psnr is not None:
            text += f", median reconstruction PSNR {found.median_psnr:.1f} dB"
        text += "".join(f"\n\nnote: {note}" for note in found.notes)
        downloads = [files[k] for k in ("micromotion", "record", "anchors", "strip") if k in files]
        made = str(files["micromotion"])
        # The last two outputs arm "Animate with this micromotion" with the file just made.
        use = gr.update(interactive=True, value=f"Animate with {mm.name}")
        return files.get("strip"), plot, text, [str(p) for p in downloads], made, use

    def inspect(
        self, choice: str | None, upload: str | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """A micromotion's metadata, per-layer norms and spectrum: ``pipelines.inspect``."""
        with _shown(upload):
            spec = _micromotion_spec(choice, upload)
            summary = describe(spec)
            if summary["kind"] != "micromotion":
                raise MicromotionError(f"{Path(spec).name}: a generator, not a micromotion")
            job = self.sessions.job_dir(request.session_hash, "inspect")
            plot = preview.plot_micromotion(summary, job / f"{_stem(summary['name'])}.png")
        return _summary_markdown(summary), plot, summary

    def end_session(self, request: gr.Request) -> None:
        """The tab was closed: delete the session's files."""
        self.sessions.drop(request.session_hash)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _use_upload(upload: str | None) -> Any:
    """An uploaded micromotion is checked at once, then selected in the dropdown beside it."""
    if not upload:
        return gr.update()
    with _shown(upload):
        _micromotion_spec(UPLOADED, upload)
    return gr.update(value=UPLOADED)


def _decomposition(rank: str, layers: str, name: str) -> Decomposition:
    """The Discover tab's rank, layers and name fields as the pipelines' decomposition."""
    return Decomposition(
        rank=parse_rank(rank.strip()), layers=layers.strip() or None, name=name or None
    )


def _animate_with(made: str | None) -> tuple[Any, ...]:
    """The micromotion just discovered, put in the Animate tab's upload, and that tab shown."""
    if not made:
        raise gr.Error("discover a micromotion first", title="Please check")
    if not Path(made).is_file():  # a session keeps its last few jobs' files only
        raise gr.Error(
            f"{Path(made).name} was cleaned up with older jobs: download it next time, or "
            "discover it again",
            title="Please check",
        )
    return made, gr.update(value=UPLOADED), gr.Tabs(selected="animate")


def _cleared(count: int) -> Callable[[], Any]:
    """A handler that empties ``count`` components: a refused upload does not stay."""
    return lambda: (None,) * count if count > 1 else None


def _inverter_controls(prefix: str) -> tuple[Any, Any, Any, Any]:
    inverter = gr.Dropdown(
        _inverter_choices(),
        value="auto",
        label="Inverter",
        info="auto: the paper's ReStyle-pSp for the paper's FFHQ network, else the projector",
        elem_id=f"{prefix}-inverter",
    )
    steps = gr.Number(
        500,
        label="Steps",
        precision=0,
        minimum=1,
        info="projector steps",
        elem_id=f"{prefix}-steps",
    )
    iterations = gr.Number(5, label="Iterations", precision=0, minimum=1, info="ReStyle iterations")
    refine = gr.Number(
        0,
        label="Refine steps",
        precision=0,
        minimum=0,
        info="projector steps after the encoder (0: none)",
    )
    return inverter, steps, iterations, refine


def _output_image(label: str, elem_id: str) -> Any:
    """An image the page shows (a file the job wrote), not one the user uploads."""
    return gr.Image(label=label, interactive=False, type="filepath", elem_id=elem_id)


def _downloads(elem_id: str) -> Any:
    """The files a job wrote, offered for download."""
    return gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id=elem_id)


def _micromotion_picker(prefix: str) -> tuple[Any, Any]:
    """A micromotion chosen from the shipped ones and the zoo, or uploaded beside the list."""
    choice = gr.Dropdown(
        _micromotion_choices(),
        value=PACKAGED_DIRECTIONS[0],
        label="Micromotion",
        elem_id=f"{prefix}-micromotion",
    )
    upload = gr.File(
        label="…or upload a micromotion (.safetensors)",
        file_types=list(MICROMOTION_SUFFIXES),
        type="filepath",
        elem_id=f"{prefix}-upload",
    )
    return choice, upload


def build_app(config: WebConfig, sessions: SessionFiles) -> gr.Blocks:
    """The page, its three tabs and their handlers.

    The generator is loaded first (once: callers hold a
    :func:`~micromotion.pipelines._load.reuse_networks` block), so a bad spec fails here.

    Args:
        config: What to serve and the limits.
        sessions: Where each session's files go.

    Returns:
        The Gradio app, not yet launched (see :func:`serve`).
    """
    G, spec = open_generator(config.generator, config.device)
    about = describe_generator(G, spec)
    jobs = Jobs(config, sessions)
    limits = config.limits
    res = about["config"]["img_resolution"]
    # A file is named, not located: the page does not show the server's directories.
    shown = Path(spec).name if Path(spec).is_file() else spec

    with gr.Blocks(title="micromotion", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            f"# micromotion\nGenerator **{shown}**: {res} px, W+ [{about['num_ws']}, "
            f"{about['w_dim']}], fingerprint `{about['fingerprint'][:12]}…`",
            elem_id="header",
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Animate", id="animate"):
                with gr.Row():
                    with gr.Column():
                        source = gr.Radio(
                            [PHOTO, SEED], value=PHOTO, label="Face", elem_id="animate-source"
                        )
                        photo = gr.File(
                            label="Photo",
                            file_types=["image"],
                            type="filepath",
                            elem_id="animate-photo",
                        )
                        photo_preview = gr.Image(
                            label="Uploaded photo", interactive=False, height=160, type="filepath"
                        )
                        with gr.Row():
                            seed = gr.Number(
                                0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED
                            )
                            truncation = gr.Slider(0, 1, 0.7, step=0.05, label="Truncation")
                        choice, upload = _micromotion_picker("animate")
                        strength = gr.Slider(
                            -20,
                            20,
                            DEFAULT_STRENGTH,
                            step=0.1,
                            label="Strength",
                            info="negative: the opposite way",
                        )
                        with gr.Row():
                            frames = gr.Slider(
                                2,
                                limits.frames,
                                min(100, limits.frames),
                                step=1,
                                label="Frames",
                                elem_id="animate-frames",
                            )
                            fps = gr.Slider(1, 60, 30, step=1, label="FPS", elem_id="animate-fps")
                        with gr.Row():
                            layers = gr.Textbox(
                                "",
                                label="Layers",
                                placeholder="e.g. 0-7 (default: the micromotion's)",
                            )
                            pingpong = gr.Checkbox(False, label="Ping-pong loop")
                        with gr.Accordion("Photo and inversion", open=False):
                            with gr.Row():
                                align = gr.Checkbox(
                                    True,
                                    label="Align the face",
                                    info="off: the photo is an FFHQ-aligned crop",
                                )
                                paste_back = gr.Checkbox(
                                    False, label="Paste back", info="frames show the whole photo"
                                )
                            inverter, steps, iterations, refine = _inverter_controls("animate")
                        make_gif = gr.Checkbox(True, label="Also make a GIF")
                        go = gr.Button("Animate", variant="primary", elem_id="animate-run")
                    with gr.Column():
                        with gr.Row():
                            aligned = _output_image("Aligned crop", "animate-aligned")
                            recon = _output_image("Reconstruction", "animate-recon")
                        summary = gr.Markdown(elem_id="animate-summary")
                        video = gr.Video(
                            label="Clip",
                            interactive=False,
                            autoplay=True,
                            loop=True,
                            elem_id="animate-video",
                        )
                        downloads = _downloads("animate-files")
                photo.upload(jobs.check_photo, photo, photo_preview).failure(
                    _cleared(2), None, [photo, photo_preview]
                )
                upload.upload(_use_upload, upload, choice).failure(_cleared(1), None, upload)
                go.click(
                    jobs.animate,
                    [
                        source,
                        photo,
                        seed,
                        truncation,
                        choice,
                        upload,
                        strength,
                        frames,
                        fps,
                        layers,
                        pingpong,
                        paste_back,
                        align,
                        inverter,
                        steps,
                        iterations,
                        refine,
                        make_gif,
                    ],
                    [aligned, recon, summary, video, downloads],
                    concurrency_id="jobs",
                )

            with gr.Tab("Discover", id="discover"):
                with gr.Row():
                    rank = gr.Textbox("4", label="Rank", info="the paper: 4; or auto")
                    dlayers = gr.Textbox("", label="Layers", placeholder="e.g. 0-7 (default: all)")
                    name = gr.Textbox("", label="Name", placeholder="recorded in the file")
                with gr.Row():
                    with gr.Column():
                        with gr.Tab("From text", id="discover-text"):
                            template = gr.Textbox(
                                "a person with {degree} smile",
                                label="Template",
                                info="{degree} is replaced by each degree",
                                elem_id="text-template",
                            )
                            degrees = gr.Textbox(
                                ",".join(DEFAULT_DEGREES),
                                label="Degrees",
                                info="in motion order, comma-separated",
                                elem_id="text-degrees",
                            )
                            with gr.Row():
                                tseed = gr.Number(
                                    1, label="Seed", precision=0, minimum=0, maximum=MAX_SEED
                                )
                                tsteps = gr.Number(
                                    40, label="Steps", precision=0, minimum=1, elem_id="text-steps"
                                )
                            tgo = gr.Button(
                                "Discover from text", variant="primary", elem_id="text-run"
                            )
                        with gr.Tab("From a video", id="discover-video"):
                            clip_file = gr.File(
                                label="Video of one face performing the motion",
                                file_types=["video"],
                                type="filepath",
                                elem_id="video-file",
                            )
                            video_note = gr.Markdown(elem_classes=["mm-note"])
                            with gr.Row():
                                vframes = gr.Number(16, label="Frames", precision=0, minimum=3)
                                vnext = gr.Number(
                                    150, label="Steps per next frame", precision=0, minimum=1
                                )
                            valign = gr.Checkbox(
                                True,
                                label="Align the face",
                                info="off: the video shows aligned crops",
                            )
                            vinverter, vsteps, viterations, vrefine = _inverter_controls("video")
                            vgo = gr.Button(
                                "Discover from the video", variant="primary", elem_id="video-run"
                            )
                    with gr.Column():
                        strip = _output_image("Anchors", "discover-strip")
                        spectrum = _output_image(
                            "Per-layer |d| and singular values", "discover-plot"
                        )
                        found = gr.Markdown(elem_id="discover-summary")
                        dfiles = _downloads("discover-files")
                        made = gr.State(None)  # the micromotion file this session discovered last
                        use = gr.Button(
                            "Animate with this micromotion",
                            interactive=False,
                            elem_id="discover-use",
                        )
                outputs = [strip, spectrum, found, dfiles, made, use]
                use.click(_animate_with, made, [upload, choice, tabs])
                tgo.click(
                    jobs.discover_text,
                    [template, degrees, tseed, tsteps, rank, dlayers, name],
                    outputs,
                    concurrency_id="jobs",
                )
                clip_file.upload(jobs.check_video, clip_file, video_note).failure(
                    _cleared(2), None, [clip_file, video_note]
                )
                vgo.click(
                    jobs.discover_video,
                    [
                        clip_file,
                        vframes,
                        vsteps,
                        vnext,
                        valign,
                        vinverter,
                        viterations,
                        vrefine,
                        rank,
                        dlayers,
                        name,
                    ],
                    outputs,
                    concurrency_id="jobs",
                )

            with gr.Tab("Inspect", id="inspect"):
                with gr.Row():
                    with gr.Column():
                        ichoice, iupload = _micromotion_picker("inspect")
                        igo = gr.Button("Inspect", variant="primary", elem_id="inspect-run")
                        details = gr.Markdown(elem_id="inspect-summary")
                    with gr.Column():
                        iplot = _output_image("Per-layer |d| and singular values", "inspect-plot")
                        raw = gr.JSON(label="Summary")
                iupload.upload(_use_upload, iupload, ichoice).failure(_cleared(1), None, iupload)
                igo.click(jobs.inspect, [ichoice, iupload], [details, iplot, raw])

        demo.unload(jobs.end_session)
    return demo


def serve(
    demo: gr.Blocks, config: WebConfig, *, on_ready: Callable[[gr.Blocks], None] | None = None
) -> None:
    """Serve ``demo`` until interrupted (Ctrl-C, SIGTERM), then close the server.

    The queue runs ``config.concurrency`` jobs at once and shows the others their place.
    Nothing reaches the network: no share link, no analytics, no server-side rendering
    (Node), no web fonts (the theme uses the system's).
    """
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.queue_size)
    theme = gr.themes.Default(font=THEME_FONTS, font_mono=["ui-monospace", "monospace"])
    demo.launch(
        server_name=config.host,
        server_port=config.port,
        share=False,
        prevent_thread_lock=True,
        max_file_size=config.limits.upload_bytes,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        show_error=True,
        footer_links=[],
        theme=theme,
        css=CSS,
    )
    try:
        if on_ready is not None:
            on_ready(demo)
        # Gradio's own block_thread() swallows Ctrl-C; this loop lets it (and SIGTERM, turned
        # into an exception by micromotion._entry) reach the CLI, which reports it.
        while True:
            time.sleep(0.5)
    finally:
        demo.close()
