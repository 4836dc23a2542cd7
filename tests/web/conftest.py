"""The web app as a user meets it: `micromotion web` in a subprocess, driven by Chromium.

One server runs for the whole module set (starting Python with torch, Gradio and open_clip
takes seconds); every test gets a fresh browser page. The server's TMPDIR is a directory of
the test's own, so the tests can check that the app writes nothing outside its private
directory and deletes that directory when it stops.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator, write_lossless_mp4
from micromotion import save_generator
from micromotion.media.images import to_uint8
from micromotion.subspace.micromotion import Micromotion

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium without a network: no background services, no QUIC, no sandbox (containers).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
#: The upload limit the test server runs with (the astronaut JPEG is far below it).
MAX_UPLOAD_MB = 0.5
#: Server start-up: Python, torch, Gradio, open_clip, the generator.
START_TIMEOUT = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots go: ``$MICROMOTION_ARTIFACTS`` when set, else pytest's tmp dir."""
    where = os.environ.get("MICROMOTION_ARTIFACTS")
    path = Path(where) / "web" if where else tmp_path_factory.mktemp("web-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def web_files(tmp_path_factory) -> dict[str, Path | str]:
    """A tiny generator, a micromotion for it, tiny CLIP, photos good and bad, a video."""
    tmp = tmp_path_factory.mktemp("web-files")
    G = tiny_generator(7)
    with torch.no_grad():  # keep images mostly inside [-1, 1], as a trained network's
        for name, p in G.named_parameters():
            if ".torgb." in name and ".affine." not in name:
                p.mul_(0.3)
    mm = Micromotion(
        direction=torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1)),
        mask=torch.ones(G.num_ws, dtype=torch.bool),
        metadata={"name": "wiggle", "generator_fingerprint": G.fingerprint()},
    )
    from skimage import data as skdata

    Image.fromarray(skdata.astronaut()).save(tmp / "astronaut.jpg", quality=90)
    Image.fromarray(np.full((80, 80, 3), 90, np.uint8)).save(tmp / "wall.png")
    (tmp / "notes.png").write_text("not an image, whatever the name says")
    noise = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp / "big.png")  # ~1 MB of noise: over MAX_UPLOAD_MB
    # A video of aligned "faces": the generator's own frames moving along a direction, so the
    # projector can invert them in a few steps.
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)))[0]
    step = torch.randn(G.w_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        codes = torch.stack([ws + 0.4 * t * step for t in range(6)])
        frames = to_uint8(G.synthesis(codes, noise_mode="const"))
    write_lossless_mp4(tmp / "motion.mp4", frames, fps=6)
    cfg = tmp / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    weights = tmp / "tiny-clip.pt"
    torch.save(tiny_clip_module(1).state_dict(), weights)
    return {
        "generator": save_generator(G, tmp / "g.safetensors"),
        "micromotion": mm.save(tmp / "wiggle.safetensors"),
        "photo": tmp / "astronaut.jpg",
        "faceless": tmp / "wall.png",
        "not_image": tmp / "notes.png",
        "big": tmp / "big.png",
        "video": tmp / "motion.mp4",
        "clip": f"{cfg}:{weights}",
        "num_ws": str(G.num_ws),
        "resolution": str(G.img_resolution),
    }


class Server:
    """A running ``micromotion web`` and what it wrote."""

    def __init__(self, url: str, process: subprocess.Popen, tmpdir: Path, log: Path) -> None:
        self.url, self.process, self.tmpdir, self.log = url, process, tmpdir, log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def server(web_files, tmp_path_factory):
    """``micromotion web`` on 127.0.0.1 at a free port, stopped (SIGTERM) after the tests."""
    base = tmp_path_factory.mktemp("web-server")
    tmpdir, home = base / "tmp", base / "home"
    tmpdir.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "TMPDIR": str(tmpdir),  # the app's private directory is made here
        "MICROMOTION_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    log = base / "server.log"
    command = [
        sys.executable, "-m", "micromotion", "web",
        "--generator", str(web_files["generator"]),
        "--clip", str(web_files["clip"]),
        "--device", "cpu",
        "--port", str(port),
        "--max-upload-mb", str(MAX_UPLOAD_MB),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            pytest.fail(f"micromotion web exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.perf_counter() - started > START_TIMEOUT:
            process.kill()
            pytest.fail(f"micromotion web did not answer in {START_TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.25)
    running = Server(url, process, tmpdir, log)
    running.start_seconds = time.perf_counter() - started
    yield running
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("micromotion web did not stop within 30 s of SIGTERM")
    # Everything the app wrote lived in its private directory, which is gone now.
    left = sorted(p.relative_to(tmpdir).as_posix() for p in tmpdir.rglob("*"))
    assert left == [], f"files left behind in TMPDIR: {left[:20]}"


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium (Playwright cannot download its own browsers here)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the web tests drive Debian's Chromium "
            "(apt-get install chromium; .ci/run installs it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the app; any request that leaves 127.0.0.1 is blocked and recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    outside: list[str] = []

    def route(route):
        host = route.request.url.split("/")[2] if "://" in route.request.url else ""
        if host.split(":")[0] in ("127.0.0.1", "localhost") or route.request.url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.outside_requests = outside
    page.set_default_timeout(30_000)
    began = time.perf_counter()
    page.goto(server.url)
    page.wait_for_selector("#animate-run")
    page.load_seconds = time.perf_counter() - began
    yield page
    context.close()
