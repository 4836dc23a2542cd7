"""Base utilities every layer may use: atomic files, provenance, seeds, devices.

Nothing here knows about networks, files of weights or the paper's method.
"""
