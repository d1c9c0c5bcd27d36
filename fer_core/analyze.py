"""Analyse a recorded video, an image, a folder of images or a zip of images: one CSV row per
face per analysed frame, a summary, and optionally an annotated H.264 video.

    summary = analyze_file("talk.mp4", "talk.csv", classifier, detector, annotated="talk.mp4")

Frames are decoded, analysed and written as they come (`iter_frames` is a generator and the
CSV is written row by row), so memory does not grow with the length of a video. A video keeps
one `FaceTracker` across its frames (stable `face_id`s, a full face scan every
`infer.DEFAULT_RESCAN_EVERY` frames as on the Live page); each image of a folder or zip is a
source of its own (the tracker is reset, ids keep counting). Probabilities in the CSV are each
frame's own (not smoothed); the Analyse page smooths its timelines as the Live page does.

The CSV and the annotated video are written under temporary names and renamed into place at
the end, also when the analysis is stopped (`should_stop`) or the video turns out to be
truncated: the rows written so far are kept and the summary says why it ended.
"""

from __future__ import annotations

import contextlib
import csv
import os
import queue
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_core import uploads
from fer_core.data.sources import IMAGE_SUFFIXES, SYSTEM_FOLDERS, read_regular, walk_folder
from fer_core.detect import FaceDetector
from fer_core.files import atomic_path
from fer_core.infer import DEFAULT_RESCAN_EVERY, FaceTracker, decode_image, draw_faces, process_frame
from fer_core.labels import CONFIDENCE_DECIMALS, EMOTIONS, UNCERTAIN, is_uncertain
from fer_core.runtimes import FaceModel

COLUMNS = ("source", "frame", "time_s", "face_id", "x", "y", "w", "h", "label", "confidence",
           "uncertain", *EMOTIONS)
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
VIDEO, IMAGE, FOLDER, ZIP = "video", "image", "folder", "zip"


class AnalysisError(ValueError):
    """An input that cannot be analysed at all; the message names the file and why."""


@dataclass(frozen=True)
class Frame:
    source: str  # the file name (inside a folder or zip: its path there)
    index: int  # frame number in its source, from 0
    time_s: float  # from the stream's time stamps (0 for an image)
    image: np.ndarray  # BGR
    analyse: bool = True  # False for frames `every` skips (still drawn into the video)


@dataclass
class Summary:
    """What an analysis found and cost; `to_json` is the CLI's `--json` line."""

    frames: int = 0  # analysed frames (images count as one frame each)
    frames_with_faces: int = 0
    faces: int = 0  # rows written
    face_ids: set[int] = field(default_factory=set)
    seconds: float = 0.0
    # face-frames shown as each emotion, or as uncertain (below the threshold of the analysis)
    emotion_frames: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((*EMOTIONS, UNCERTAIN), 0))
    stopped: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def emotion_share(self) -> dict[str, float]:
        """Share of face-frames shown as each emotion, or as uncertain."""
        total = sum(self.emotion_frames.values())
        return {e: (n / total if total else 0.0) for e, n in self.emotion_frames.items()}

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "frames_with_faces": self.frames_with_faces,
                "frames_without_faces": self.frames - self.frames_with_faces,
                "faces": self.faces, "distinct_face_ids": len(self.face_ids),
                "seconds": round(self.seconds, 3),
                "frames_per_second": round(self.frames_per_second, 1),
                "emotion_share": {e: round(v, 4) for e, v in self.emotion_share().items()},
                "stopped": self.stopped, "problems": self.problems}


def input_kind(path: str | os.PathLike) -> str:
    """VIDEO, IMAGE, FOLDER or ZIP from what the path is; AnalysisError for anything else."""
    path = Path(path)
    real = path.resolve()
    if real.parts[1:2] and real.parts[1] in SYSTEM_FOLDERS:
        raise AnalysisError(f"{path}: a system file or folder (/{real.parts[1]}), not a video "
                            "or photos")
    if path.is_dir():
        return FOLDER
    if not path.exists():
        raise AnalysisError(f"{path}: no such file or folder")
    if not path.is_file():
        raise AnalysisError(f"{path}: not a regular file (a pipe or device holds no video)")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VIDEO
    if suffix in IMAGE_SUFFIXES:
        return IMAGE
    if suffix == ".zip":
        return ZIP
    raise AnalysisError(f"{path.name}: not a video ({', '.join(VIDEO_SUFFIXES)}), an image "
                        f"({', '.join(IMAGE_SUFFIXES)}), a folder or a .zip of images")


def iter_frames(path: str | os.PathLike, *, every: int = 1,
                problems: list[str] | None = None) -> Iterator[Frame]:
    """The frames of any input, decoded one at a time. Images that cannot be decoded, and a
    video that ends early, are noted in `problems` and skipped; an input with nothing to
    analyse raises AnalysisError."""
    path = Path(path)
    problems = problems if problems is not None else []
    kind = input_kind(path)
    if kind == VIDEO:
        yield from _prefetched(_video_frames(path, max(1, every), problems))
        return
    if kind == IMAGE:
        named = [(path.name, lambda: read_regular(path, path.name))]
    elif kind == FOLDER:
        names = sorted(n for n, _, _ in walk_folder(path, path.name)
                       if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        named = [(n, lambda n=n: read_regular(path / n, n)) for n in names]
    else:
        named = _zip_members(path)
    if not named:
        raise AnalysisError(f"{path.name}: no image in it ({', '.join(IMAGE_SUFFIXES)})")
    decoded = 0
    for name, read in named:
        try:
            data = read()
            if not data:
                raise ValueError(f"{name}: the file is empty (0 bytes)")
            image = decode_image(data, name)
        except (ValueError, OSError) as exc:
            problems.append(str(exc))
            continue
        decoded += 1
        yield Frame(name, 0, 0.0, image)
    if not decoded:
        raise AnalysisError(f"{path.name}: none of its {len(named)} image(s) could be read "
                            f"({problems[0]})")


_DONE = object()


def _prefetched(frames: Iterator[Frame], depth: int = 8) -> Iterator[Frame]:
    """`frames`, decoded ahead in a thread while the caller analyses (PyAV decodes without
    the GIL): at most `depth` frames wait, so memory stays flat. An error raised while
    decoding is raised here, in order; closing this generator stops the decoding."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
        finally:
            frames.close()
            put(_DONE)

    worker = threading.Thread(target=decode, name="fer-analyze-decode", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _zip_members(path: Path) -> list[tuple[str, Callable[[], bytes]]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise AnalysisError(f"{path.name}: not a readable zip archive ({exc})") from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    problem = uploads.archive_problem([(i.filename, i.file_size, i.compress_size) for i in infos])
    if problem:
        raise AnalysisError(f"{path.name}: {problem}")
    images = sorted((i for i in infos if Path(i.filename).suffix.lower() in IMAGE_SUFFIXES
                     and not Path(i.filename).name.startswith(".")), key=lambda i: i.filename)
    return [(i.filename, lambda i=i: zf.read(i)) for i in images]


def _video_frames(path: Path, every: int, problems: list[str]) -> Iterator[Frame]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise AnalysisError(f"{path.name}: not a video that can be decoded ({exc}; an mp4 "
                            "cut short before its index cannot be read at all)") from None
    with container:
        if not container.streams.video:
            raise AnalysisError(f"{path.name}: the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = _stream_rate(stream)
        index = -1
        try:  # packet by packet: what decoded before a damaged or missing packet is kept
            for packet in container.demux(stream):
                for frame in packet.decode():
                    index += 1
                    time_s = float(frame.time) if frame.time is not None else index / rate
                    yield Frame(path.name, index, time_s, frame.to_ndarray(format="bgr24"),
                                analyse=index % every == 0)
        except (av.error.FFmpegError, ValueError) as exc:
            if index < 0:
                raise AnalysisError(f"{path.name}: no frame could be decoded ({exc})") from None
            problems.append(f"{path.name}: the video ends early after frame {index} "
                            f"(truncated or damaged: {exc})")
        if index < 0:
            raise AnalysisError(f"{path.name}: the video has no frames")
        declared = int(stream.frames or 0)
        if 0 < index + 1 < declared and not problems:
            problems.append(f"{path.name}: the video ends after {index + 1} of the {declared} "
                            "frames its header declares (truncated?)")


class _VideoWriter:
    """The annotated H.264 mp4 (yuv420p needs even sides: odd ones lose their last pixel).

    Frames are encoded in a thread of their own (`write` only queues them; `close` waits for
    the last), so the encoder (~7 ms a 640x480 frame on one core, libx264 veryfast) runs beside
    the next frames' detection instead of after it. An encoding error is raised by the next
    `write` or by `close`.
    """

    QUEUE_FRAMES = 8

    def __init__(self, path: Path, rate: float) -> None:
        import av

        self._av = av
        self._container = av.open(str(path), "w", format="mp4")
        self._rate = rate
        self._stream = None
        self._frames: queue.Queue = queue.Queue(maxsize=self.QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._encode_all, name="fer-analyze-encode",
                                        daemon=True)
        self._thread.start()

    def write(self, image: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._frames.put(image)

    def _encode_all(self) -> None:
        while (image := self._frames.get()) is not None:
            if self._error is None:
                try:
                    self._encode(image)
                except BaseException as exc:  # noqa: BLE001  (handed to the writing thread)
                    self._error = exc

    def _encode(self, image: np.ndarray) -> None:
        h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        if self._stream is None:
            from fractions import Fraction

            self._stream = self._container.add_stream(
                "libx264", rate=Fraction(self._rate).limit_denominator(1001))
            self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, "yuv420p"
            self._stream.options = {"preset": "veryfast", "crf": "23"}
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]),
                                                 format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        self._frames.put(None)
        self._thread.join()
        try:
            if self._error is None and self._stream is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
        finally:
            self._container.close()
        if self._error is not None:
            raise self._error


def video_rate(path: str | os.PathLike) -> float:
    """Frames per second of a video's first stream (30 when it does not say)."""
    import av

    with av.open(str(path)) as container:
        return _stream_rate(container.streams.video[0])


def _stream_rate(stream: Any) -> float:
    """A PyAV video stream's frames per second: its average, else FFmpeg's guess, else 30."""
    return float(stream.average_rate or stream.guessed_rate or 30)


def frame_count(path: str | os.PathLike, every: int = 1) -> int | None:
    """How many frames an analysis of `path` will analyse, when the input says (a video's
    header; a folder's or zip's images); None when it cannot be known before decoding."""
    path = Path(path)
    kind = input_kind(path)
    if kind == IMAGE:
        return 1
    if kind == VIDEO:
        import av

        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                frames = int(stream.frames or 0)
                if not frames and stream.duration and stream.time_base:
                    rate = float(stream.average_rate or 0)
                    frames = round(float(stream.duration * stream.time_base) * rate)
        except (av.error.FFmpegError, IndexError, OSError):
            return None
        return -(-frames // max(1, every)) if frames else None
    if kind == FOLDER:
        return sum(1 for n, _, _ in walk_folder(path, path.name)
                   if Path(n).suffix.lower() in IMAGE_SUFFIXES) or None
    return len(_zip_members(path)) or None


class _Thumbnails:
    """Up to `per_face` crops of each face id, `gap_s` apart, as `<id>-<frame>.png`."""

    def __init__(self, folder: Path, per_face: int = 3, gap_s: float = 2.0) -> None:
        self.folder, self.per_face, self.gap_s = folder, per_face, gap_s
        self._kept: dict[object, list[float]] = {}

    def offer(self, frame: Frame, faces: list) -> None:
        for face in faces:
            key = face.track_id if face.track_id is not None else f"{frame.source}"
            times = self._kept.setdefault(key, [])
            if len(times) >= self.per_face or (times and frame.time_s - times[-1] < self.gap_s):
                continue
            x, y, w, h = (int(v) for v in face.box)
            crop = frame.image[max(0, y):y + h, max(0, x):x + w]
            if crop.size == 0:
                continue
            self.folder.mkdir(parents=True, exist_ok=True)
            side = 96
            thumb = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
            name = f"{face.track_id if face.track_id is not None else 0}-{frame.index}.png"
            cv2.imwrite(str(self.folder / name), thumb)
            times.append(frame.time_s)


def open_classifier(spec: str, *, mirror: bool) -> FaceModel:
    """The model `spec` names (run id, model file, `default`) as an analysis runs it: on the
    fastest measured export of a `.keras` file, as the Live page does, with each face's mirror
    image too when `mirror`; ValueError/OSError when it cannot be opened."""
    from fer_core import catalog, model_card
    from fer_core.backends import open_face_model, with_mirror_view

    classifier = open_face_model(model_card.runtime_file(catalog.resolve(spec).path))
    return with_mirror_view(classifier) if mirror else classifier


def analyze_file(path: str | os.PathLike, out_csv: str | os.PathLike, classifier: FaceModel,
                 detector: FaceDetector, *, annotated: str | os.PathLike | None = None,
                 every: int = 1, rescan_every: int = DEFAULT_RESCAN_EVERY,
                 thumbnails: str | os.PathLike | None = None, uncertain_below: float = 0.0,
                 on_frame: Callable[[Frame, Summary], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Summary:
    """Analyse `path` into `out_csv` (module docstring); AnalysisError when nothing in it can
    be analysed, in which case no file is left behind. `thumbnails`: a folder to keep a few
    crops of each face in (`<face id>-<frame>.png`). `uncertain_below`: faces less sure than
    this are drawn as uncertain in the annotated video, flagged in the CSV's `uncertain`
    column (its `label` stays the top emotion) and counted as uncertain in the summary."""
    path, out_csv = Path(path), Path(out_csv)
    summary = Summary()
    kind = input_kind(path)
    if annotated is not None and kind != VIDEO:
        raise AnalysisError(f"{path.name}: an annotated video needs a video as input")
    tracker = FaceTracker()
    keeper = _Thumbnails(Path(thumbnails)) if thumbnails is not None else None
    source = None
    started = time.perf_counter()
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_csv, suffix=".csv") as tmp_csv, \
            _annotated_video(annotated, path) as writer:
        with open(tmp_csv, "w", newline="", encoding="utf-8") as fh:
            rows = csv.writer(fh)
            rows.writerow(COLUMNS)
            last_faces: list = []
            for frame in iter_frames(path, every=every, problems=summary.problems):
                if should_stop is not None and should_stop():
                    summary.stopped = True
                    break
                if frame.source != source:
                    source = frame.source
                    tracker.reset()
                if frame.analyse:
                    image, last_faces = process_frame(
                        frame.image, detector, classifier, tracker=tracker, smoothing=0.0,
                        rescan_every=rescan_every if kind == VIDEO else 1,
                        uncertain_below=uncertain_below, draw=writer is not None)
                    _record(rows, frame, last_faces, summary)
                    if keeper is not None:
                        keeper.offer(frame, last_faces)
                elif writer is not None:
                    image = draw_faces(frame.image.copy(), last_faces)
                if writer is not None:
                    writer.write(image)
                summary.seconds = time.perf_counter() - started
                if on_frame is not None and frame.analyse:
                    on_frame(frame, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def csv_row(source: str, frame: int, time_s: float, face: Any) -> list:
    """One face as a row of COLUMNS (the Analyse CSV and the Live page's recording): its top
    label, and whether it was shown as uncertain instead (`labels.is_uncertain`)."""
    x, y, w, h = (int(v) for v in face.box)
    d = CONFIDENCE_DECIMALS
    return [source, frame, f"{time_s:.3f}", face.track_id, x, y, w, h, face.label,
            f"{np.round(face.confidence, d):.{d}f}", "true" if face.uncertain else "false",
            *(f"{p:.{d}f}" for p in face.probs)]


def _record(rows: Any, frame: Frame, faces: list, summary: Summary) -> None:
    summary.frames += 1
    if faces:
        summary.frames_with_faces += 1
    for face in faces:
        rows.writerow(csv_row(frame.source, frame.index, frame.time_s, face))
        summary.faces += 1
        summary.emotion_frames[UNCERTAIN if face.uncertain else face.label] += 1
        if face.track_id is not None:
            summary.face_ids.add(face.track_id)


@contextlib.contextmanager
def _annotated_video(target: str | os.PathLike | None,
                     source: Path) -> Iterator[_VideoWriter | None]:
    """The annotated video's writer under a temporary name, renamed into place at the end
    (removed when the analysis fails); None when no video is asked for."""
    if target is None:
        yield None
        return
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".mp4") as tmp:
        writer = _VideoWriter(tmp, video_rate(source))
        try:
            yield writer
        finally:
            writer.close()


def smoothed(probs: np.ndarray, weight: float) -> np.ndarray:
    """The exponential average the Live page applies per face (`weight`: the past's share),
    over rows in time order."""
    out = np.array(probs, dtype=np.float64, copy=True)
    for i in range(1, len(out)):
        out[i] = weight * out[i - 1] + (1.0 - weight) * out[i]
    return out


def uncertain_flags(rows: Any, uncertain_below: float = 0.0) -> Any:
    """Which rows (a DataFrame with COLUMNS) were shown as uncertain: their `uncertain` column
    ("true"/"false" or booleans) where there is one, else `labels.is_uncertain` of their
    confidence at `uncertain_below`."""
    if "uncertain" in rows.columns:
        return rows["uncertain"].astype(str).str.lower().eq("true")
    return is_uncertain(rows["confidence"], uncertain_below)


def emotion_share_by_face(rows: Any, uncertain_below: float = 0.0) -> Any:
    """Share of each face's analysed frames per top emotion: a DataFrame, one row per face id
    (rows: the CSV as a DataFrame). Frames shown as "uncertain" count as such (a last column)
    instead of as their top emotion: the rows' own `uncertain` flags where the table has them
    (a Live recording's threshold may have moved while it ran), else confidence below
    `uncertain_below`."""
    import pandas as pd

    if len(rows) == 0:
        columns = [*EMOTIONS, UNCERTAIN] if uncertain_below > 0 else list(EMOTIONS)
        return pd.DataFrame(columns=["face_id", "frames", *columns])
    unsure = uncertain_flags(rows, uncertain_below)
    columns = [*EMOTIONS, UNCERTAIN] if uncertain_below > 0 or unsure.any() else list(EMOTIONS)
    labels = rows["label"].where(~unsure, UNCERTAIN)
    counts = pd.crosstab(rows["face_id"], labels).reindex(columns=columns, fill_value=0)
    share = counts.div(counts.sum(axis=1), axis=0)
    share.insert(0, "frames", counts.sum(axis=1))
    return share.reset_index()
