"""`micromotion web` in a real browser: animate, bad uploads, discover, inspect."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image

from micromotion.media.video_in import read_video_frames
from micromotion.subspace.micromotion import Micromotion

FRAMES, FPS = 6, 12
SEED_LABEL = "Sampled face (seed)"


def set_number(page, selector: str, value) -> None:
    """Type into a Gradio number box or a slider's number box, then leave it (commits)."""
    box = page.locator(f"{selector} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")


def upload(page, selector: str, path) -> None:
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))


def downloads(page, selector: str, tmp_path: Path) -> dict[str, Path]:
    """Fetch every file a Gradio File output lists, by its link, as the browser would."""
    links = page.locator(f"{selector} a[download]")
    links.first.wait_for()
    saved = {}
    for i in range(links.count()):
        href = links.nth(i).get_attribute("href")
        assert href, "a download without a link"
        name = links.nth(i).get_attribute("download")
        assert name, href
        response = page.request.get(href)
        assert response.ok, (href, response.status)
        saved[name] = tmp_path / name
        saved[name].write_bytes(response.body())
    return saved


def error_toast(page, *fragments: str, timeout: float = 30_000) -> str:
    """The text of the error message the page shows, which must contain every fragment."""
    toast = page.locator(".toast-body").filter(has_text=fragments[0]).first
    toast.wait_for(timeout=timeout)
    text = toast.inner_text()
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in page.content()
    return text


def test_animate_a_photo_plays_in_the_page(page, server, web_files, artifacts, tmp_path):
    began = time.perf_counter()
    upload(page, "#animate-photo", web_files["photo"])
    upload(page, "#animate-upload", web_files["micromotion"])
    # Uploading a micromotion selects it.
    page.wait_for_function(
        "document.querySelector('#animate-micromotion input').value.startsWith('uploaded')"
    )
    set_number(page, "#animate-frames", FRAMES)
    set_number(page, "#animate-fps", FPS)
    page.get_by_text("Photo and inversion").click()
    page.locator("#animate-inverter input").fill("projector")
    page.locator("#animate-inverter input").press("Enter")
    set_number(page, "#animate-steps", 20)
    page.locator("#animate-run").click()

    video = page.locator("#animate-video video")
    video.wait_for(timeout=90_000)
    page.wait_for_function(
        "document.querySelector('#animate-video video').readyState >= 2", timeout=30_000
    )
    animated = time.perf_counter() - began
    state = video.evaluate(
        """async v => { v.muted = true; await v.play();
             await new Promise(r => setTimeout(r, 300));
             return {ready: v.readyState, duration: v.duration, width: v.videoWidth,
                     height: v.videoHeight, time: v.currentTime, error: v.error}; }"""
    )
    size = int(web_files["resolution"])
    assert state["error"] is None and state["ready"] >= 2, state
    assert state["width"] == state["height"] == size, state
    assert abs(state["duration"] - FRAMES / FPS) < 0.05, state
    assert state["time"] > 0, f"the clip does not play: {state}"

    summary = page.locator("#animate-summary").inner_text()
    assert f"{FRAMES} frames" in summary and "PSNR" in summary and "dB" in summary, summary
    for image in ("#animate-aligned img", "#animate-recon img"):
        assert page.locator(image).evaluate("i => i.complete && i.naturalWidth") == size
    files = downloads(page, "#animate-files", tmp_path)
    mp4 = next(p for n, p in files.items() if n.endswith(".mp4"))
    gif = next(p for n, p in files.items() if n.endswith(".gif"))
    record = next(p for n, p in files.items() if n.endswith(".mp4.json"))
    frames = read_video_frames(mp4)
    assert frames.shape == (FRAMES, size, size, 3)
    with Image.open(gif) as g:
        assert g.n_frames == FRAMES and g.size == (size, size)
    meta = json.loads(record.read_text())
    assert meta["frames"] == FRAMES and meta["fps"] == FPS
    assert meta["start"]["inverter"]["method"] == "projector"
    assert meta["start"]["inversion"]["steps"] == 20
    assert meta["micromotions"][0]["name"] == "wiggle"
    assert page.outside_requests == [], page.outside_requests
    page.screenshot(path=str(artifacts / "animate.png"), full_page=True)
    print(
        f"server start {server.start_seconds:.1f} s, page load {page.load_seconds:.2f} s, "
        f"animate (upload to playing clip) {animated:.1f} s"
    )


def test_bad_uploads_show_their_message(page, server, web_files, artifacts):
    # Not an image, whatever its name says: refused on upload, with the file's name.
    upload(page, "#animate-photo", web_files["not_image"])
    error_toast(page, "notes.png: not a readable image")
    # ...and removed from the page, so it cannot be animated by mistake.
    page.locator("#animate-photo input[type=file]").wait_for(state="attached")
    # Over the server's upload limit: Gradio refuses it in the page before storing it.
    upload(page, "#animate-photo", web_files["big"])
    error_toast(page, "exceed the maximum allowed size of 512", "big.png")
    page.screenshot(path=str(artifacts / "upload-errors.png"), full_page=True)
    # A micromotion for another network (the shipped smile is FFHQ's): refused before work.
    page.get_by_label(SEED_LABEL).check()
    page.locator("#animate-run").click()
    error_toast(page, "is for W+ of [18, 512]", f"[{web_files['num_ws']}, 10]")
    # A photo without a face.
    page.get_by_label("Photo", exact=True).first.check()
    upload(page, "#animate-photo", web_files["faceless"])
    upload(page, "#animate-upload", web_files["micromotion"])
    page.wait_for_function(
        "document.querySelector('#animate-micromotion input').value.startsWith('uploaded')"
    )
    page.locator("#animate-run").click()
    text = error_toast(page, "no face found")
    assert "wall.png" in text and "/tmp" not in text, text  # named, not located
    # A generator uploaded where a micromotion belongs: refused on upload, and removed.
    page.locator("#animate-upload button[aria-label='Clear']").click()
    upload(page, "#animate-upload", web_files["generator"])
    error_toast(page, "g.safetensors: a generator, not a micromotion")
    page.locator("#animate-upload input[type=file]").wait_for(state="attached")
    assert page.outside_requests == [], page.outside_requests


def test_discover_from_text_gives_a_loadable_micromotion(
    page, server, web_files, artifacts, tmp_path
):
    page.get_by_role("tab", name="Discover").click()
    page.locator("#text-degrees textarea, #text-degrees input").first.fill("no,25%,50%,75%,100%")
    set_number(page, "#text-steps", 6)
    page.get_by_label("Rank").fill("3")
    page.get_by_label("Name").fill("grin")
    page.locator("#text-run").click()
    files = downloads(page, "#discover-files", tmp_path)
    mm = Micromotion.load(files["grin.safetensors"])
    assert mm.name == "grin" and mm.metadata["source"] == "text"
    assert mm.metadata["degrees"] == ["no", "25%", "50%", "75%", "100%"]
    assert mm.num_anchors == 6 and mm.num_ws == int(web_files["num_ws"])
    assert set(files) >= {"grin.safetensors", "grin.json", "grin_anchors.npy", "grin_strip.png"}
    summary = page.locator("#discover-summary").inner_text()
    assert "grin" in summary and "rank 3" in summary and "6 anchors" in summary, summary
    assert page.locator("#discover-strip img").evaluate("i => i.naturalWidth") > 0
    assert page.locator("#discover-plot img").evaluate("i => i.naturalWidth") == 720
    page.screenshot(path=str(artifacts / "discover-text.png"), full_page=True)

    # "Animate with grin": the file goes to the Animate tab, which is shown, and animates.
    page.locator("#discover-use").click()
    page.wait_for_function(
        "document.querySelector('#animate-micromotion input').value.startsWith('uploaded')"
    )
    page.locator("#animate-upload [aria-label='grin.safetensors']").wait_for(timeout=10_000)
    assert page.get_by_role("tab", name="Animate").get_attribute("aria-selected") == "true"
    page.get_by_label(SEED_LABEL).check()
    set_number(page, "#animate-frames", FRAMES)
    page.locator("#animate-run").click()
    page.locator("#animate-video video").wait_for(timeout=60_000)
    clip = downloads(page, "#animate-files", tmp_path)
    record = json.loads(next(p for n, p in clip.items() if n.endswith(".mp4.json")).read_text())
    assert record["micromotions"][0]["name"] == "grin" and record["frames"] == FRAMES
    assert record["start"]["seed"] == 0


def test_discover_from_a_video(page, server, web_files, artifacts, tmp_path):
    page.get_by_role("tab", name="Discover").click()
    page.get_by_role("tab", name="From a video").click()
    upload(page, "#video-file", web_files["video"])
    page.get_by_text("motion.mp4: 6 frames, 32×32").wait_for()
    set_number(page, "#video-steps", 10)
    page.get_by_label("Steps per next frame").fill("5")
    page.get_by_label("Frames", exact=True).fill("6")
    page.get_by_label("Align the face").uncheck()
    page.locator("#video-inverter input").fill("projector")
    page.locator("#video-inverter input").press("Enter")
    page.get_by_label("Rank").fill("3")
    page.get_by_label("Name").fill("")
    page.locator("#video-run").click()
    files = downloads(page, "#discover-files", tmp_path)
    mm = Micromotion.load(files["motion.safetensors"])
    assert mm.metadata["source"] == "video" and mm.num_anchors == 6
    assert "median reconstruction PSNR" in page.locator("#discover-summary").inner_text()
    page.screenshot(path=str(artifacts / "discover-video.png"), full_page=True)


def test_inspect_a_shipped_micromotion(page, server, web_files, artifacts):
    page.get_by_role("tab", name="Inspect").click()
    page.locator("#inspect-run").click()  # the default: the shipped smile
    summary = page.locator("#inspect-summary")
    summary.get_by_text("W+ [18, 512]").wait_for()
    assert "smile" in summary.inner_text() and "license" in summary.inner_text()
    plot = page.locator("#inspect-plot img")
    plot.wait_for()
    assert plot.evaluate("i => i.naturalWidth") == 720
    page.screenshot(path=str(artifacts / "inspect.png"), full_page=True)
    upload(page, "#inspect-upload", web_files["generator"])
    error_toast(page, "a generator, not a micromotion")


def test_closing_the_tab_deletes_the_session_files(browser, server, web_files):
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url)
    page.get_by_role("tab", name="Inspect").click()
    page.locator("#inspect-run").click()
    page.locator("#inspect-plot img").wait_for()
    (root,) = server.tmpdir.glob("micromotion-web-*")
    sessions = root / "sessions"
    assert any(sessions.iterdir()), "the job wrote nothing in the session directory"
    before = {p.name for p in sessions.iterdir()}
    context.close()
    deadline = time.perf_counter() + 30
    while before & {p.name for p in sessions.iterdir()}:
        if time.perf_counter() > deadline:
            pytest.fail(f"session files still there 30 s after the tab closed: {before}")
        time.sleep(0.2)
