"""Media in and out: images, video in (the one decoder) and video out.

* :mod:`.images` — reading any image as RGB, uint8 ↔ tensors, PNGs and preview strips.
* :mod:`.video_in` — probing a video and decoding the frames asked for.
* :mod:`.video_out` — MP4, GIF and PNG-strip writers, each written atomically.
"""
