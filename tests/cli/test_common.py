"""The CLI's shared helpers: options become settings by name; pipelines run with bars."""

from __future__ import annotations

import pytest

from micromotion.cli._common import make_decomposition, settings_from
from micromotion.cli._progress import run_job
from micromotion.errors import ParameterError
from micromotion.inversion import InversionConfig


def test_settings_from_takes_the_fields_it_names_and_leaves_the_rest() -> None:
    options = {"steps": 7, "seed": 3, "outdir": "out", "device": "cpu"}
    config = settings_from(InversionConfig, options, space="w")
    assert (config.steps, config.seed, config.space) == (7, 3, "w")
    assert options == {"outdir": "out", "device": "cpu"}  # passed on to the pipeline


def test_settings_from_values_win_over_options_and_are_not_passed_on() -> None:
    options = {"steps": 7, "seed": 3}
    config = settings_from(InversionConfig, options, seed=9)
    assert config.seed == 9
    assert options == {}


def test_make_decomposition_parses_the_rank_and_checks_it() -> None:
    options = {"rank": "auto", "method": None, "layers": "0-3", "name": None, "output": "x"}
    decomposition = make_decomposition(options, robust=False)
    assert (decomposition.rank, decomposition.layers, decomposition.robust) == (
        "auto",
        "0-3",
        False,
    )
    assert options == {"output": "x"}
    with pytest.raises(ParameterError, match="rank"):
        make_decomposition({"rank": "0", "method": None, "layers": None, "name": None})


def test_run_job_passes_a_progress_callback_only_when_asked() -> None:
    seen: list[object] = []

    def job(a: int, *, b: int, progress: object) -> int:
        seen.append(progress)
        if progress is not None:
            progress("stage", 1, 2)  # type: ignore[operator]
        return a + b

    assert run_job(job, 1, b=2, unit="frame") == 3
    assert run_job(job, 1, b=2, bars=False) == 3
    assert callable(seen[0]) and seen[1] is None
