"""Webcam-like frames with real faces, shared by the live tests and benchmarks/live_pipeline.py.

The face is the astronaut portrait that scikit-image ships (`skimage.data.astronaut()`), pasted
at 1 or 3 sizes onto a real photo background (`skimage.data.coffee()`), so the Haar cascade
sees a real face on real texture. Nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
# Per face count: (side, left x) of each pasted face; the middle one of three is mirrored.
LAYOUTS: dict[int, list[tuple[int, int]]] = {
    1: [(240, 200)],
    3: [(200, 10), (170, 230), (150, 440)],
}


@lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:220, 125:325]  # 200x200 head
    background = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    return face, background


def face_frame(n_faces: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A BGR uint8 frame (height, width, 3) with `n_faces` (0, 1 or 3) real faces."""
    face, background = _sources()
    frame = cv2.resize(background, (width, height), interpolation=cv2.INTER_AREA)
    if n_faces == 0:
        return frame
    sx, sy = width / WIDTH, height / HEIGHT
    for i, (side, x) in enumerate(LAYOUTS[n_faces]):
        side_px = max(1, round(side * min(sx, sy)))
        patch = cv2.resize(face, (side_px, side_px), interpolation=cv2.INTER_AREA)
        if i == 1:
            patch = patch[:, ::-1]
        x0, y0 = round(x * sx), (height - side_px) // 2
        frame[y0 : y0 + side_px, x0 : x0 + side_px] = patch
    return frame


def face_centers(n_faces: int) -> list[tuple[int, int]]:
    """Where the pasted faces' centres are in a default-size frame (for checking boxes)."""
    return [(x + side // 2, (HEIGHT - side) // 2 + side // 2) for side, x in LAYOUTS[n_faces]]
