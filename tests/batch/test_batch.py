"""Batch jobs end to end on a tiny generator: both engines, reruns, bad rows, killed workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator, write_lossless_mp4
from micromotion.batch import REPORT, run_batch
from micromotion.batch import rows as batch_rows
from micromotion.batch.rows import MARKER, OWNER
from micromotion.media.images import to_uint8
from micromotion.pipelines.animate import ClipSettings, animate
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.generator import save_generator

# Records are stamped with this time, so two runs of the same rows give the same bytes.
EPOCH = "1700000000"


@pytest.fixture(autouse=True)
def _fixed_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def planted(G, seed):
    d = torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(seed))
    return Micromotion(direction=d, mask=torch.ones(G.num_ws, dtype=torch.bool))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs a user would have: a generator, micromotions, codes, photos, a clip, CLIP."""
    root = tmp_path_factory.mktemp("world")
    G = tiny_generator(0)
    save_generator(G, root / "g.safetensors")
    planted(G, 0).save(root / "up.safetensors")
    planted(G, 1).save(root / "side.safetensors")
    w = torch.randn(3, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(2))
    np.save(root / "codes.npy", w.numpy())
    (root / "photos").mkdir()
    Image.fromarray(data.astronaut()).save(root / "photos" / "astronaut.png")
    Image.fromarray(data.astronaut()[:, ::-1].copy()).save(root / "photos" / "mirrored.png")
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(root / "photos" / "wall.png")
    (root / "photos" / "notes.png").write_text("not an image")
    # A clip of one face moving along a planted direction, as aligned crops.
    d = planted(G, 3).direction
    with torch.no_grad():
        codes = torch.stack([w[0] + t * d for t in torch.linspace(0, 1, 6)])
        frames = to_uint8(G.synthesis(codes, noise_mode="const"))
    write_lossless_mp4(root / "clip.mp4", frames)
    (root / "tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    torch.save(tiny_clip_module(1).state_dict(), root / "tiny-clip.pt")
    rows = [
        "job,name,seed,latent,index,photo,video,micromotion,strength,frames,format,inverter,"
        "steps,next_steps,align,rank,template,degrees,clip",
        "animate,seed0,0,,,,,up.safetensors,2,4,mp4,,,,,,,,",
        "animate,seed1,1,,,,,up.safetensors,,4,gif,,,,,,,,",
        "animate,code1,,codes.npy,1,,,up.safetensors;side.safetensors,3;-1,3,png,,,,,,,,",
        "animate,astronaut,,,,photos/astronaut.png,,up.safetensors,2,3,mp4,projector,2,,,,,,",
        "invert,,,,,photos/astronaut.png,,,,,,projector,2,,,,,,",
        "invert,,,,,photos/mirrored.png,,,,,,projector,2,,,,,,",
        "invert,,,,,photos/notes.png,,,,,,projector,2,,,,,,",
        "invert,,,,,photos/wall.png,,,,,,projector,2,,,,,,",
        "discover-video,clip,,,,,clip.mp4,,,6,,projector,2,2,false,2,,,",
        "discover-text,text,,,,,,,,,,,2,,,2,a person with {degree} smile,no;50%;100%,"
        "tiny-clip.json:tiny-clip.pt",
        "animate,typo,2,,,,,up.safetensors,,many,mp4,,,,,,,,",
        "animate,gone,2,,,,,missing.safetensors,,4,mp4,,,,,,,,",
    ]
    (root / "rows.csv").write_text("\n".join(rows) + "\n")
    return root


GOOD = {"seed0", "seed1", "code1", "astronaut", "clip", "text"}


def run(world, out, **kw):
    kw.setdefault("threads", 1)
    return run_batch(world / "rows.csv", outdir=out, generator="g.safetensors", device="cpu", **kw)


def folder_bytes(out: Path, *, records: bool = True) -> dict[str, bytes]:
    """Every file the rows wrote (the report, with its timings, is not an output).

    ``records=False`` leaves out the JSON records, which name the folder they were written to.
    """
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != REPORT and (records or p.suffix != ".json")
    }


@pytest.fixture(scope="module")
def local_run(world, tmp_path_factory):
    """One local run, kept: the reference the other tests compare with."""
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    out = tmp_path_factory.mktemp("local") / "out"
    try:
        result = run(world, out)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    return result, folder_bytes(out)


def test_a_dozen_rows_run_and_bad_rows_fail_alone(world, local_run):
    result, files = local_run
    by_name = {r.name or f"row{r.number}": r for r in result.results}
    assert len(result.results) == 12 and not result.ok
    statuses = {r.number: r.status for r in result.results}
    assert [n for n, s in statuses.items() if s == "done"] == [1, 2, 3, 4, 5, 6, 9, 10]
    errors = {r.number: r.error for r in result.results if r.status == "failed"}
    assert "notes.png: not a readable image" in errors[7]
    assert "wall.png" in errors[8] and "face" in errors[8]
    assert errors[11] == "row 11: frames 'many': expected an integer"
    assert "missing.safetensors: no such file" in errors[12]
    # Each row's files are the single command's, in its own folder, plus the batch record.
    assert {"seed0/seed0.mp4", "seed0/seed0.mp4.json", "seed1/seed1.gif"} <= set(files)
    assert {"astronaut/astronaut_latent.npy", "clip/clip.safetensors", "text/text.json"} <= set(
        files
    )
    invert_rows = [r for r in result.results if r.job == "invert" and r.status == "done"]
    assert sorted(Path(f).name for r in invert_rows for f in r.files if f.endswith(".npy")) == [
        "astronaut.npy",
        "mirrored.npy",
    ]
    assert not any(n.startswith("invert-notes") or n.startswith("invert-wall") for n in files)
    record = json.loads(files["seed0/seed0.mp4.json"])
    assert record["generator_fingerprint"] == tiny_generator(0).fingerprint()
    marker = json.loads(files["seed0/" + MARKER])
    assert marker["row"]["clip"]["frames"] == 4 and marker["row_number"] == 1
    assert marker["files"]["seed0/seed0.mp4"] == batch_rows.sha256_file(
        result.outdir / "seed0" / "seed0.mp4"
    )
    report = [json.loads(line) for line in (result.outdir / REPORT).read_text().splitlines()]
    assert [r["number"] for r in report] == list(range(1, 13))
    assert report[10]["status"] == "failed" and report[10]["error"] == errors[11]
    assert set(by_name["seed0"].files) == {"seed0/seed0.mp4", "seed0/seed0.mp4.json"}


def test_a_row_gives_what_the_single_command_gives(world, local_run, tmp_path):
    _, files = local_run
    G = tiny_generator(0)
    alone = animate(
        [world / "up.safetensors"], output=tmp_path / "seed0.mp4", strengths=[2.0],
        generator=world / "g.safetensors", seed=0, clip=ClipSettings(frames=4), device="cpu",
    )  # fmt: skip
    assert alone.output.read_bytes() == files["seed0/seed0.mp4"]
    assert alone.record["generator_fingerprint"] == G.fingerprint()


def test_a_rerun_does_no_work_and_touches_nothing(world, local_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(local_run[0].outdir, out, copy_function=shutil.copy2)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != REPORT}
    ran = []
    for kind, fn in list(batch_rows._PIPELINES.items()):
        monkeypatch.setitem(
            batch_rows._PIPELINES,
            kind,
            lambda job, *a, _fn=fn: (ran.append(job.name), _fn(job, *a)),
        )
    result = run(world, out)
    assert {r.name for r in result.results if r.status == "skipped"} == GOOD | {
        r.name for r in local_run[0].results if r.job == "invert" and r.status == "done"
    }
    # Only the rows that failed in their pipeline are tried again.
    failed = {r.number: r.name for r in local_run[0].results if r.status == "failed"}
    assert sorted(ran) == sorted([failed[7], failed[8]])
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != REPORT} == stamps


def test_changed_inputs_or_outputs_and_partial_rows_are_redone(world, local_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(local_run[0].outdir, out)
    reference = local_run[1]
    (out / "seed1" / "seed1.gif").write_bytes(b"damaged")  # an output changed
    (out / "code1" / MARKER).unlink()  # a row killed between its files and its marker
    (out / "seed0" / ".seed0.mp4.tmp-leftover").write_bytes(b"half")  # a killed write
    (out / "seed0" / MARKER).unlink()
    marker = json.loads((out / "clip" / MARKER).read_text())
    marker["row"]["config"]["steps"] = 999  # the row's settings changed since
    (out / "clip" / MARKER).write_text(json.dumps(marker))
    result = run(world, out)
    redone = {r.name for r in result.results if r.status == "done"}
    assert redone == {"seed0", "seed1", "code1", "clip"}
    assert folder_bytes(out) == reference  # and the leftover is gone


def test_a_folder_the_batch_did_not_make_is_refused_not_wiped(world, tmp_path):
    out = tmp_path / "out"
    (out / "seed0").mkdir(parents=True)
    (out / "seed0" / "thesis.tex").write_text("mine")
    result = run(world, out)
    seed0 = next(r for r in result.results if r.name == "seed0")
    assert seed0.status == "failed" and "did not write" in seed0.error
    assert (out / "seed0" / "thesis.tex").read_text() == "mine"
    assert not (out / "seed0" / OWNER).exists()


def test_the_ray_engine_gives_byte_identical_outputs(world, local_run, tmp_path):
    # The same output path as the local run's (records name their files), moved aside first.
    out = local_run[0].outdir
    kept = tmp_path / "kept"
    shutil.move(out, kept)
    try:
        result = run(world, out, engine="ray")
        assert [r.status for r in result.results] == [r.status for r in local_run[0].results]
        assert [r.error for r in result.results] == [r.error for r in local_run[0].results]
        assert folder_bytes(out) == local_run[1]
        again = run(world, out, engine="ray")  # a rerun starts no Ray for finished rows
        assert {r.status for r in again.results if r.number not in (7, 8, 11, 12)} == {"skipped"}
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(kept, out)


# --- killed mid-run -----------------------------------------------------------------------------


def slow_manifest(world, path, rows=6):
    lines = ["job,name,seed,micromotion,frames,format"]
    lines += [f"animate,slow{i},{i},{world / 'up.safetensors'},40,mp4" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(*args, **kw):
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    return subprocess.Popen(
        [sys.executable, "-m", "micromotion", "batch", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True, **kw,
    )  # fmt: skip


def wait_for(predicate, proc, timeout=120.0):
    """Poll ``predicate`` until it holds; False if ``proc`` ends or time runs out first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def markers(out):
    return sorted(p.parent.name for p in out.glob(f"*/{MARKER}"))


@pytest.fixture(scope="module")
def slow_reference(world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slowref")
    manifest = slow_manifest(world, tmp / "rows.csv")
    out = tmp / "out"
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        result = run_batch(manifest, outdir=out, generator=world / "g.safetensors",
                           device="cpu", threads=1)  # fmt: skip
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    assert result.ok
    return manifest, out


def test_a_killed_local_run_resumes_with_nothing_lost(world, slow_reference, tmp_path):
    manifest, reference = slow_reference
    out = reference.parent / "killed"
    shutil.rmtree(out, ignore_errors=True)
    proc = cli(manifest, "-o", out, "--generator", world / "g.safetensors", "--device", "cpu",
               "--threads", "1")  # fmt: skip
    try:
        assert wait_for(lambda: len(markers(out)) >= 2, proc), proc.communicate()
        os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = markers(out)
    assert 2 <= len(finished) < 6
    again = cli(manifest, "-o", out, "--generator", world / "g.safetensors", "--device", "cpu",
                "--threads", "1")  # fmt: skip
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert f"{len(finished)} skipped" in stdout
    assert folder_bytes(out, records=False) == folder_bytes(reference, records=False)


def test_a_ray_worker_killed_mid_row_is_restarted_and_nothing_is_half_written(
    world, slow_reference
):
    manifest, reference = slow_reference
    out = reference.parent / "ray-killed"
    shutil.rmtree(out, ignore_errors=True)
    proc = cli(manifest, "-o", out, "--engine", "ray", "--generator", world / "g.safetensors",
               "--device", "cpu", "--threads", "1")  # fmt: skip
    killed = []

    def kill_a_worker():
        if not markers(out):
            return False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # Ray names its actor processes
            try:
                args = cmdline.read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "RowRunner" in args and "ray::" in args:
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed.append(cmdline.parent.name)
                return True
        return False

    try:
        assert wait_for(kill_a_worker, proc, timeout=180), proc.communicate()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed
    assert proc.returncode == 0, stderr
    assert "6 rows: " in stdout and "0 failed" in stdout
    assert folder_bytes(out, records=False) == folder_bytes(reference, records=False)


def test_photos_are_aligned_in_workers_and_a_broken_pool_falls_back(world, tmp_path, monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from micromotion.batch import engine

    lines = ["job,name,photo,inverter,steps", *(
        f"invert,p{i},{world / 'photos' / n},projector,2"
        for i, n in enumerate(["astronaut.png", "mirrored.png", "wall.png"])
    )]  # fmt: skip
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    handed = []
    real_put = engine.NetworkCache.put
    monkeypatch.setattr(
        engine.NetworkCache, "put", lambda self, *a: (handed.append(a[0]), real_put(self, *a))
    )
    common = {"generator": world / "g.safetensors", "device": "cpu", "threads": 1, "workers": 2}
    first = run_batch(tmp_path / "rows.csv", outdir=tmp_path / "a", **common)
    # Three crops came from the worker processes; the face-less one still fails with its error.
    assert handed == ["face-crop"] * 3
    assert [r.status for r in first.results] == ["done", "done", "failed"]
    assert "wall.png" in first.results[2].error and "face" in first.results[2].error

    def broken(self, *args):
        future: Future = Future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future

    monkeypatch.setattr(engine._Pool, "submit", broken)
    handed.clear()
    second = run_batch(tmp_path / "rows.csv", outdir=tmp_path / "b", **common)
    assert handed == []  # nothing from the workers: the pipelines aligned the photos themselves
    assert [r.status for r in second.results] == ["done", "done", "failed"]
    assert folder_bytes(tmp_path / "a", records=False) == folder_bytes(
        tmp_path / "b", records=False
    )


@pytest.mark.parametrize(
    ("cores", "workers"), [(1, None), (2, 2)], ids=["one-core", "two-actors-two-cores"]
)
def test_ray_never_waits_for_cores_it_has_given_away(world, tmp_path, cores, workers):
    # Photo rows need alignment tasks beside the actors: on one core, or with as many actors
    # as cores, a stage that reserved every core would leave the other waiting forever.
    lines = ["job,name,photo,inverter,steps"]
    lines += [
        f"invert,p{i},{world / 'photos' / 'astronaut.png'},projector,{2 + i}" for i in range(2)
    ]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    args = [tmp_path / "rows.csv", "-o", tmp_path / "out", "--engine", "ray", "--generator",
            world / "g.safetensors", "--device", "cpu"]  # fmt: skip
    if workers:
        args += ["--workers", workers]
    proc = cli(*args, preexec_fn=lambda: os.sched_setaffinity(0, set(range(cores))))
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    assert "2 rows: 2 done" in stdout
