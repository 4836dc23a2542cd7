"""What the web app serves and how much it accepts: torch-free settings the CLI fills in."""

from __future__ import annotations

from dataclasses import dataclass, field

from micromotion.core.defaults import DEFAULT_CLIP
from micromotion.errors import ParameterError


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one request may ask of the server.

    Attributes:
        upload_bytes: Largest upload (photo, video, micromotion file); Gradio refuses larger
            files in the page before they are stored.
        pixels: Most pixels of a photo (checked from its header, before decoding) and of a
            video frame. 25 MP is a 6000 × 4000 camera photo.
        video_seconds: Longest video for discovery.
        video_frames: Most frames in such a video.
        frames: Most frames of one rendered clip.
        steps: Most projector or CLIP optimisation steps of one job.
    """

    upload_bytes: int = 20 * 2**20
    pixels: int = 25_000_000
    video_seconds: float = 30.0
    video_frames: int = 900
    frames: int = 300
    steps: int = 2000

    def __post_init__(self) -> None:
        for name in ("upload_bytes", "pixels", "video_frames", "frames", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(name, f"{value!r}: must be a whole number of at least 1")
        if not self.video_seconds > 0:
            raise ParameterError("video_seconds", f"{self.video_seconds!r}: must be positive")
        if self.frames < 2:
            raise ParameterError("frames", f"{self.frames}: a clip needs at least 2 frames")


@dataclass(frozen=True)
class WebConfig:
    """How ``micromotion web`` serves.

    Attributes:
        generator: The generator every job uses: a checkpoint file or a zoo name.
        clip: CLIP for text discovery, as ``MODEL:WEIGHTS`` (see ``discover text --clip``).
        id_weights: ArcFace IR-SE50 weights for text discovery's identity loss (off without).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        host: Address to bind; 127.0.0.1 keeps the app on this machine.
        port: TCP port (0: any free port).
        concurrency: Jobs run at once; the rest wait in a queue that shows their position.
        queue_size: Most jobs waiting at once; further requests are refused with a message.
        limits: Upload and job bounds.
    """

    generator: str = "ffhq"
    clip: str = DEFAULT_CLIP
    id_weights: str | None = None
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    concurrency: int = 1
    queue_size: int = 32
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ParameterError("port", f"{self.port}: must be from 0 to 65535")
        if self.concurrency < 1:
            raise ParameterError("concurrency", f"{self.concurrency}: must be at least 1")
        if self.queue_size < 1:
            raise ParameterError("queue_size", f"{self.queue_size}: must be at least 1")
