"""Anchors: W+ codes of one face performing a micromotion (from text prompts or a video)."""
