"""``python -m micromotion``: the command line."""

from micromotion._entry import run

run()
