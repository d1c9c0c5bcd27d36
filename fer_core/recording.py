"""The Live page's recording: each face's probabilities over the webcam stream, as the same
table the Analyse page writes (`analyze.COLUMNS`, source `webcam`).

    recorder = Recorder()
    recorder.start()                    # clears what was recorded before
    recorder.add(frame_time, faces)     # from the webrtc worker thread, every processed frame
    recorder.stop()
    table = recorder.frame()            # a DataFrame: timelines, shares, the CSV download

Thread-safe (the webcam callback adds while the page reads). Bounded: at most `max_rows`
rows are kept (one hour of three faces at 30 frames a second is about 324,000); past that the
recording stops by itself and says so, so a forgotten toggle cannot exhaust memory.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from typing import Any

from fer_core.analyze import COLUMNS, csv_row

SOURCE = "webcam"
MAX_ROWS = 400_000


class Recorder:
    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._rows: list[list] = []
        self._frames = 0
        self._start: float | None = None
        self.recording = False
        self.full = False

    def start(self) -> None:
        with self._lock:
            self._rows, self._frames, self._start = [], 0, None
            self.recording, self.full = True, False

    def stop(self) -> None:
        with self._lock:
            self.recording = False

    def add(self, t: float, faces: Sequence[Any]) -> None:
        """One processed frame at time stamp `t` (seconds, any clock) and its faces."""
        with self._lock:
            if not self.recording:
                return
            if self._start is None:
                self._start = t
            if len(self._rows) + len(faces) > self.max_rows:
                self.recording, self.full = False, True
                return
            for face in faces:
                self._rows.append(csv_row(SOURCE, self._frames, t - self._start, face))
            self._frames += 1

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def row_count(self) -> int:
        """Rows so far, without copying them (the page polls it while the webcam runs)."""
        return len(self._rows)

    def rows(self) -> list[list]:
        with self._lock:
            return list(self._rows)

    def frame(self) -> Any:
        """The rows as a DataFrame with COLUMNS (numbers as numbers)."""
        import pandas as pd

        return pd.read_csv(io.StringIO(self.csv()))

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows(self.rows())
        return out.getvalue()
