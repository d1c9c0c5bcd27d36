"""`fer_core.analyze` and `python -m fer_core analyze`: real files made here (an H.264 video
drawn from the test face frames, images, folders, zips), rows, ids and timings checked
against what was drawn into them, and bad input refused with nothing half-written."""

from __future__ import annotations

import csv
import json
import zipfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from face_frames import face_frame
from fer_core.analyze import COLUMNS, AnalysisError, analyze_file
from fer_core.detect import FaceDetector
from fer_core.infer import Classifier
from fer_core.labels import EMOTIONS
from fer_core.models import create_model

FPS = 15


def write_video(path: Path, plan: list[int], fps: int = FPS, **options: str) -> Path:
    """An H.264 mp4 whose frame i shows plan[i] faces (0, 1 or 3), drifting a little."""
    import av

    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.options = {"g": "5"}  # a key frame every 5: a cut file still has some whole
        for i, n in enumerate(plan):
            image = np.roll(face_frame(n), 2 * (i % 5), axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(create_model("fernet", width=4, convs=1))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 frames of one face, 8 of none (longer than the tracker keeps a lost face), 8 of
    three."""
    folder = tmp_path_factory.mktemp("clip")
    return write_video(folder / "clip.mp4", [1] * 12 + [0] * 8 + [3] * 8)


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_video_gives_one_row_per_face_per_frame_with_stable_ids(clip, classifier, tmp_path):
    out = tmp_path / "rows.csv"
    summary = analyze_file(clip, out, classifier, FaceDetector())
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = rows_of(out)
    per_frame = {int(r["frame"]): 0 for r in rows}
    for r in rows:
        per_frame[int(r["frame"])] += 1
    assert [per_frame.get(i, 0) for i in range(28)] == [1] * 12 + [0] * 8 + [3] * 8
    for r in rows:  # time stamps from the stream: frame i at i / 15 s
        assert float(r["time_s"]) == pytest.approx(int(r["frame"]) / FPS, abs=1e-3)
        probs = [float(r[e]) for e in EMOTIONS]
        assert sum(probs) == pytest.approx(1, abs=1e-3)
        # the label is the top class; the CSV keeps 4 decimals, so a near tie may round level
        assert float(r[r["label"]]) == pytest.approx(max(probs), abs=1e-4)
        assert r["source"] == "clip.mp4"
    first = {r["face_id"] for r in rows if int(r["frame"]) < 12}
    last = {r["face_id"] for r in rows if int(r["frame"]) >= 20}
    assert len(first) == 1 and len(last) == 3  # one id while the face is kept; three after
    out_json = summary.to_json()
    assert (out_json["frames"], out_json["frames_with_faces"], out_json["frames_without_faces"],
            out_json["faces"], out_json["distinct_face_ids"]) == (28, 20, 8, 36, 4)
    assert sum(out_json["emotion_share"].values()) == pytest.approx(1)
    assert out_json["frames_per_second"] > 0 and not out_json["stopped"]


def test_the_csv_the_summary_and_the_shares_agree_on_which_faces_are_uncertain(
        clip, classifier, tmp_path):
    """One threshold, one rule (`labels.is_uncertain`): a face whose confidence equals the
    threshold is named, one below it is uncertain, in the CSV's flag, the summary's shares
    and the per-face shares read back from the CSV alike."""
    import pandas as pd

    from fer_core.analyze import emotion_share_by_face

    analyze_file(clip, tmp_path / "all.csv", classifier, FaceDetector())  # every face named
    confidences = sorted(float(r["confidence"]) for r in rows_of(tmp_path / "all.csv"))
    threshold = confidences[len(confidences) // 2]  # a face sits exactly on it
    out = tmp_path / "rows.csv"
    summary = analyze_file(clip, out, classifier, FaceDetector(), uncertain_below=threshold)
    rows = rows_of(out)
    flagged = [r["uncertain"] == "true" for r in rows]
    assert flagged == [float(r["confidence"]) < threshold for r in rows]
    assert 0 < sum(flagged) < len(rows)
    assert any(float(r["confidence"]) == threshold and not f for r, f in zip(rows, flagged))
    assert summary.emotion_frames["uncertain"] == sum(flagged)
    assert summary.to_json()["emotion_share"]["uncertain"] == pytest.approx(
        sum(flagged) / len(rows), abs=1e-4)
    shares = emotion_share_by_face(pd.read_csv(out), threshold)
    assert round(float(shares["uncertain"] @ shares["frames"])) == sum(flagged)


def test_every_nth_frame_and_an_annotated_video(clip, classifier, tmp_path):
    import av

    out, video = tmp_path / "rows.csv", tmp_path / "annotated.mp4"
    summary = analyze_file(clip, out, classifier, FaceDetector(), annotated=video, every=4)
    assert sorted({int(r["frame"]) for r in rows_of(out)}) == [0, 4, 8, 20, 24]
    assert summary.frames == 7
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and not container.streams.audio
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 28 and frames[0].shape == (480, 640, 3)
    original = np.roll(face_frame(1), 0, axis=1)
    assert np.abs(frames[0].astype(int) - original).mean() > 1  # boxes and labels drawn


def test_images_folders_and_zips(classifier, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.png").write_bytes(png(face_frame(1)))
    (folder / "sub" / "three.jpg").write_bytes(cv2.imencode(".jpg", face_frame(3))[1].tobytes())
    (folder / "none.png").write_bytes(png(face_frame(0)))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "folder.csv"
    summary = analyze_file(folder, out, classifier, FaceDetector())
    counts = {}
    for r in rows_of(out):
        counts[r["source"]] = counts.get(r["source"], 0) + 1
        assert (r["frame"], r["time_s"]) == ("0", "0.000")
    assert counts == {"one.png": 1, "sub/three.jpg": 3}
    assert summary.frames == 3 and summary.frames_with_faces == 2
    assert any("empty.png: the file is empty" in p for p in summary.problems)

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/one.png", png(face_frame(1)))
        zf.writestr("__MACOSX/._one.png", b"junk")
        zf.writestr("b/three.png", png(face_frame(3)))
    analyze_file(archive, tmp_path / "zip.csv", classifier, FaceDetector())
    assert [r["source"] for r in rows_of(tmp_path / "zip.csv")] == ["a/one.png"] + ["b/three.png"] * 3

    big = cv2.resize(face_frame(1), (7680, 4320), interpolation=cv2.INTER_LINEAR)  # 8K
    (tmp_path / "8k.png").write_bytes(png(big))
    summary = analyze_file(tmp_path / "8k.png", tmp_path / "8k.csv", classifier, FaceDetector())
    assert summary.frames == 1 and summary.faces == 1  # scaled for detection, not refused
    box = rows_of(tmp_path / "8k.csv")[0]
    assert int(box["w"]) > 1000  # the box is in the full-size frame's pixels


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.png", b"\0" * (300 * 2**20))
    return path


@pytest.mark.parametrize("make, problem", [
    (lambda d: (d / "x.mp4").write_text("not a video") and d / "x.mp4",
     "not a video that can be decoded|no frame could be decoded"),
    (lambda d: (d / "x.png").write_bytes(b"") or d / "x.png", "none of its 1 image"),
    (lambda d: (d / "x.csv").write_text("a,b") and d / "x.csv", "not a video"),
    (lambda d: d / "missing.mp4", "no such file"),
    (lambda d: Path("/proc/self/status"), "a system file"),
    (lambda d: __import__("os").mkfifo(d / "pipe.mp4") or d / "pipe.mp4", "not a regular file"),
    (lambda d: _zip_bomb(d / "bomb.zip"), "zip bomb"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no image in it"),
])
def test_bad_input_is_refused_and_nothing_is_written(classifier, tmp_path, make, problem):
    source = make(tmp_path)
    out = tmp_path / "out" / "rows.csv"
    with pytest.raises(AnalysisError, match=problem):
        analyze_file(source, out, classifier, FaceDetector())
    assert not out.exists() and not list((tmp_path / "out").glob(".*")) \
        if (tmp_path / "out").exists() else True


def test_a_truncated_video_keeps_its_rows_and_says_so(classifier, tmp_path):
    """An mp4 with its index first (faststart), cut at two thirds: the frames before the cut
    are analysed and the summary says the video ended early; one cut before its index (the
    default layout puts it last) cannot be opened, and says why."""
    whole = write_video(tmp_path / "whole.mp4", [1] * 30, movflags="+faststart")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    out = tmp_path / "rows.csv"
    summary = analyze_file(cut, out, classifier, FaceDetector())
    assert 5 < summary.frames < 30 and len(rows_of(out)) == summary.faces > 0
    assert any("ends after" in p or "ends early" in p for p in summary.problems), summary.problems
    late = write_video(tmp_path / "late.mp4", [1] * 30)
    (tmp_path / "late_cut.mp4").write_bytes(late.read_bytes()[: late.stat().st_size // 2])
    with pytest.raises(AnalysisError, match="cut short before its index"):
        analyze_file(tmp_path / "late_cut.mp4", tmp_path / "late.csv", classifier,
                     FaceDetector())
    assert not (tmp_path / "late.csv").exists()


def test_a_stopped_analysis_keeps_the_rows_so_far(clip, classifier, tmp_path):
    out = tmp_path / "rows.csv"
    seen: list[int] = []
    summary = analyze_file(clip, out, classifier, FaceDetector(),
                           on_frame=lambda frame, s: seen.append(frame.index),
                           should_stop=lambda: len(seen) >= 5)
    assert summary.stopped and summary.frames == 5
    assert sorted({int(r["frame"]) for r in rows_of(out)}) == [0, 1, 2, 3, 4]
    assert summary.to_json()["stopped"] is True


def test_the_cli_writes_the_csv_and_a_json_summary(clip, tmp_path, capsys, fer_dirs):
    from fer_core.__main__ import main

    model = tmp_path / "tiny.keras"
    create_model("fernet", width=4, convs=1).save(model)
    out = tmp_path / "rows.csv"
    assert main(["analyze", str(clip), "--out", str(out), "--model", str(model),
                 "--every", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 14 and summary["faces"] == len(rows_of(out))
    assert summary["mirror"] is True  # each face with its mirror image, unless --no-mirror
    assert {"frames_with_faces", "distinct_face_ids", "seconds", "frames_per_second",
            "emotion_share"} <= set(summary)
    one_view = tmp_path / "one-view.csv"
    assert main(["analyze", str(clip), "--out", str(one_view), "--model", str(model),
                 "--every", "2", "--no-mirror"]) == 0
    capsys.readouterr()
    assert ([r["confidence"] for r in rows_of(one_view)]
            != [r["confidence"] for r in rows_of(out)])  # the default adds the mirror view
    assert main(["analyze", str(tmp_path / "nope.mp4"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["analyze", str(clip), "--out", str(out), "--uncertain-below", "1"]) == 2
    assert "--uncertain-below must be from 0 to below 1" in capsys.readouterr().err


def test_the_recorder_is_bounded_and_thread_safe():
    import threading

    from fer_core.detect import Box
    from fer_core.infer import FacePrediction
    from fer_core.recording import Recorder

    face = FacePrediction(Box(1, 2, 3, 4), "happy", 0.9, (0.1,) * 6 + (0.4,), track_id=7)
    recorder = Recorder(max_rows=1000)
    recorder.add(0.0, [face])  # not recording: ignored
    recorder.start()
    threads = [threading.Thread(target=lambda: [recorder.add(t, [face, face])
                                                for t in range(100)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorder.frames == 400 and len(recorder.rows()) == 800 == recorder.row_count
    for t in range(201):  # the 201st would pass the bound
        recorder.add(100.0 + t, [face])
    assert recorder.full and not recorder.recording and len(recorder.rows()) == 1000
    assert recorder.csv().splitlines()[0] == ",".join(COLUMNS)


def test_the_annotated_video_is_encoded_in_order_beside_the_analysis(tmp_path):
    import av

    from fer_core.analyze import _VideoWriter

    writer = _VideoWriter(tmp_path / "out.mp4", 30.0)
    for i in range(40):  # more than the queue holds: write waits, nothing is dropped
        writer.write(np.full((64, 80, 3), i * 6, np.uint8))
    writer.close()
    with av.open(str(tmp_path / "out.mp4")) as container:
        means = [f.to_ndarray(format="gray").mean() for f in container.decode(video=0)]
    assert len(means) == 40
    assert all(b > a for a, b in zip(means, means[1:], strict=False))  # in the order written


def test_an_encoding_error_is_raised_not_swallowed(tmp_path):
    from fer_core.analyze import _VideoWriter

    writer = _VideoWriter(tmp_path / "out.mp4", 30.0)
    writer.write(np.zeros((64, 80, 3), np.uint8))
    writer.write(np.zeros((64, 80, 3), np.float64))  # no bgr24 frame can be made of it
    with pytest.raises((ValueError, TypeError)):
        writer.close()


def test_the_share_of_time_counts_unsure_frames_as_uncertain():
    import pandas as pd

    from fer_core.analyze import emotion_share_by_face

    rows = pd.DataFrame({"face_id": [1, 1, 1, 1, 2],
                         "label": ["happy", "happy", "sad", "sad", "fear"],
                         "confidence": [0.9, 0.3, 0.8, 0.39, 0.5]})
    plain = emotion_share_by_face(rows).set_index("face_id")
    assert "uncertain" not in plain.columns
    assert plain.loc[1, "happy"] == plain.loc[1, "sad"] == 0.5
    unsure = emotion_share_by_face(rows, 0.4).set_index("face_id")
    assert list(unsure.columns[-1:]) == ["uncertain"]
    assert unsure.loc[1, ["happy", "sad", "uncertain"]].tolist() == [0.25, 0.25, 0.5]
    assert unsure.loc[2, "fear"] == 1.0 and unsure.loc[2, "frames"] == 1
    # a table's own flags (what was shown) win over a threshold given afterwards, either way
    rows["uncertain"] = [False, True, False, False, True]
    shown = emotion_share_by_face(rows, 0.4).set_index("face_id")
    assert shown.loc[1, ["happy", "sad", "uncertain"]].tolist() == [0.25, 0.5, 0.25]
    assert shown.loc[2, "uncertain"] == 1.0
    assert "uncertain" not in emotion_share_by_face(rows.assign(uncertain=False)).columns
    assert (emotion_share_by_face(rows.assign(uncertain=False), 0.4)["uncertain"] == 0).all()
    as_read = emotion_share_by_face(rows.assign(uncertain=["false", "true", "false", "false",
                                                           "true"]), 0.4)
    assert as_read.equals(shown.reset_index())
