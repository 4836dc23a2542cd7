"""Manifests: rows parse into typed jobs; a bad row fails alone with a one-line error."""

from __future__ import annotations

import json

import pytest

from micromotion.batch.manifest import parse_manifest
from micromotion.errors import MicromotionError
from micromotion.pipelines.animate import ClipSettings


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"x")
    (tmp_path / "m.safetensors").write_bytes(b"x")
    return tmp_path


def write_csv(folder, text):
    path = folder / "rows.csv"
    path.write_text(text)
    return path


def write_jsonl(folder, rows):
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_csv_row_becomes_typed_settings_with_paths_from_the_manifest_folder(folder):
    path = write_csv(
        folder,
        "job,photo,micromotion,strength,frames,fps,loop,steps,inverter,align\n"
        "animate,photos/a.png,smile;m.safetensors,3;-2,7,12.5,pingpong,9,projector,true\n"
        "\n"  # blank lines are not rows
        "animate,,smile,,,,,,,\n",
    )
    m = parse_manifest(path, generator="g.safetensors")
    assert [b.error for b in m.bad] == ["row 2: give exactly one of photo, latent or seed"]
    (job,) = m.jobs
    assert job.kind == "animate" and job.number == 1
    assert job.fields["photo"] == (folder / "photos" / "a.png").resolve()
    assert job.fields["micromotion"] == ("smile", str((folder / "m.safetensors").resolve()))
    assert job.fields["strength"] == (3.0, -2.0)
    assert job.fields["clip"] == ClipSettings(frames=7, fps=12.5, loop="pingpong")
    assert job.fields["photo_settings"].steps == 9
    assert job.fields["photo_settings"].inverter == "projector"
    assert job.generator == str((folder / "g.safetensors").resolve())  # a path: absolute
    assert job.inverter == "projector" and job.photo == job.fields["photo"]
    # The name is made from the row: the input's stem and a hash of the settings.
    assert job.name.startswith("animate-a-") and len(job.name) == len("animate-a-") + 8
    assert set(job.inputs) == {job.fields["photo"], folder.joinpath("m.safetensors").resolve()}


def test_names_are_stable_and_differ_with_the_settings(folder):
    rows = [
        {"job": "animate", "seed": 3, "micromotion": "smile"},
        {"job": "animate", "seed": 3, "micromotion": "smile", "frames": 10},
        {"job": "animate", "seed": 3, "micromotion": "smile", "name": "mine"},
    ]
    first = parse_manifest(write_jsonl(folder, rows))
    again = parse_manifest(write_jsonl(folder, rows))
    names = [j.name for j in first.jobs]
    assert names == [j.name for j in again.jobs]
    assert names[0] != names[1] and names[0].startswith("animate-seed3-") and names[2] == "mine"


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"job": "dance"}, "row 1: job 'dance': choose one of animate, invert"),
        ({"job": "animate", "seed": 1, "micromotion": "smile", "frame": 3},
         "row 1: frame is not a setting of animate rows"),
        ({"job": "animate", "seed": 1, "micromotion": "smile", "output": "x.mp4"},
         "row 1: output is set by the batch"),
        ({"job": "animate", "seed": 1, "micromotion": "smile", "frames": "many"},
         "row 1: frames 'many': expected an integer"),
        ({"job": "animate", "seed": 1, "micromotion": "smile", "frames": 1},
         "row 1: frames 1: need 2 to 10000 frames"),
        ({"job": "animate", "seed": 1, "micromotion": "smile", "fps": 1e39},
         "row 1: fps 1e+39: expected a finite number that fits float32"),
        ({"job": "animate", "seed": 1, "micromotion": "smile", "format": "avi"},
         "row 1: format 'avi': expected mp4 or gif or png"),
        ({"job": "animate", "seed": 1, "micromotion": "smile;age", "strength": "1;2;3"},
         "row 1: strength 3 values for 2 micromotions"),
        ({"job": "animate", "seed": 1}, "row 1: micromotion is required"),
        ({"job": "invert"}, "row 1: photo is required for an invert row"),
        ({"job": "invert", "photo": "missing.png"}, "missing.png: no such file"),
        ({"job": "discover-video", "video": "clip.mp4", "rank": 0}, "row 1: rank 0"),
        ({"job": "discover-text", "name": "../escape"}, "row 1: name '../escape': use letters"),
        ({"job": "discover-text", "decomposition": 1}, "decomposition is not a setting"),
        ({"job": "discover-text", "name": "x"}, None),
    ],
)  # fmt: skip
def test_bad_rows_fail_alone_with_a_one_line_error(folder, row, error):
    path = write_jsonl(folder, [row, {"job": "animate", "seed": 0, "micromotion": "smile"}])
    m = parse_manifest(path)
    if error is None:
        assert [j.number for j in m.jobs] == [1, 2] and not m.bad
        return
    (bad,) = m.bad
    assert bad.number == 1 and error in bad.error and "\n" not in bad.error
    assert [j.number for j in m.jobs] == [2]  # the good row still runs


def test_a_row_that_repeats_another_is_refused(folder):
    row = {"job": "animate", "seed": 0, "micromotion": "smile"}
    m = parse_manifest(write_jsonl(folder, [row, row]))
    assert len(m.jobs) == 1 and "are row 1's" in m.bad[0].error


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("rows.txt", "job\n", "a manifest is a .csv or .jsonl file"),
        ("rows.csv", "photo\nx.png\n", "the CSV header has no 'job' column"),
        ("rows.csv", "job,job\nanimate,animate\n", "names 'job' twice"),
        ("rows.csv", "job\nanimate,extra\n", "line 2: more cells than the header"),
        ("rows.csv", "", "the manifest has no rows"),
        ("rows.jsonl", '{"job": "animate"}\n[1, 2]\n', "line 2: a row must be a JSON object"),
        ("rows.jsonl", '{"job": "animate", "fps": NaN}\n', "line 1: not JSON"),
        ("rows.jsonl", "{not json\n", "line 1: not JSON"),
    ],
)
def test_a_manifest_that_cannot_be_read_is_one_error(tmp_path, name, text, error):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MicromotionError, match=error) as info:
        parse_manifest(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_and_undecodable_manifests(tmp_path):
    with pytest.raises(MicromotionError, match="no such manifest"):
        parse_manifest(tmp_path / "none.csv")
    (tmp_path / "latin.csv").write_bytes(b"job\n\xe9\n")
    with pytest.raises(MicromotionError, match="not UTF-8"):
        parse_manifest(tmp_path / "latin.csv")
