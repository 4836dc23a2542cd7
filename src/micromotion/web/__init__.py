"""``micromotion web``: a Gradio app over the pipelines (animate, discover, inspect).

The app is a thin layer: every job is one call of a :mod:`micromotion.pipelines` function,
its progress callback drawn as a bar in the page, its :class:`~micromotion.errors.MicromotionError`
shown as a message. Networks are loaded once for the app's lifetime
(:func:`micromotion.pipelines._load.reuse_networks`). Every file the app and Gradio write —
uploads, results, Gradio's cache — lives in one private temporary directory, each browser
session in its own directory inside it, deleted when the tab closes; the whole directory is
deleted when the server stops.

Gradio is an optional dependency (``pip install "micromotion[web]"``); it is imported only
when the app is built, so the rest of the package works without it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micromotion.errors import MicromotionError
from micromotion.web.config import Limits, WebConfig
from micromotion.web.sessions import SessionFiles

__all__ = ["Limits", "SessionFiles", "WebConfig", "launch", "require_gradio"]

#: Environment that keeps Gradio (and the Hugging Face client it brings) off the network:
#: no usage analytics, no version check, no telemetry.
QUIET_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def require_gradio() -> None:
    """Fail with one line saying how to install Gradio when it is missing.

    Raises:
        MicromotionError: Gradio is not installed.
    """
    if importlib.util.find_spec("gradio") is None:
        raise MicromotionError(
            'the web app needs Gradio, which is not installed: pip install "micromotion[web]"'
        )


def launch(config: WebConfig, *, on_ready: Callable[[Any], None] | None = None) -> None:
    """Build the app and serve it until interrupted; every file it wrote is deleted after.

    The generator is loaded (and checked) before the server starts, so a bad ``--generator``
    fails at once with its own message.

    Args:
        config: What to serve and the limits.
        on_ready: Called with the Gradio app once it is listening (tests read its URL).

    Raises:
        MicromotionError: Gradio is missing, or the generator cannot be loaded.
    """
    require_gradio()
    root = Path(tempfile.mkdtemp(prefix="micromotion-web-"))
    saved = {key: os.environ.get(key) for key in (*QUIET_ENVIRONMENT, "GRADIO_TEMP_DIR")}
    # Gradio reads these when it is first imported: uploads and its cache go under our root.
    os.environ.update(QUIET_ENVIRONMENT, GRADIO_TEMP_DIR=str(root / "gradio"))
    try:
        from micromotion.pipelines._load import NetworkCache, reuse_networks
        from micromotion.web.app import build_app, serve

        with reuse_networks(NetworkCache()):
            demo = build_app(config, SessionFiles(_private_dir(root / "sessions")))
            serve(demo, config, on_ready=on_ready)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path
