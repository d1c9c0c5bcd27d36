"""Analyses as background jobs (`fer_core.analysis_jobs`): real child processes on a real
video, stopped, killed and failed ones, and the Analyse page over them (AppTest)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import analysis_jobs as jobs
from test_analyze import rows_of, write_video

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "5_Analyse.py")


@pytest.fixture
def env(fer_dirs, tiny_model):
    fer_dirs.default_model(tiny_model)
    return fer_dirs


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """10 frames of one face, 8 of none (the tracker forgets it), 10 of three: 40 faces."""
    return write_video(tmp_path_factory.mktemp("jobs-clip") / "talk.mp4",
                       [1] * 10 + [0] * 8 + [3] * 10)


def wait_done(folder: Path, timeout: float = 180.0) -> jobs.AnalysisStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = jobs.read_status(folder)
        if status.state != jobs.RUNNING:
            return status
        time.sleep(0.3)
    raise AssertionError(f"analysis {folder.name} still running after {timeout} s")


def test_an_analysis_runs_in_its_own_process_and_keeps_everything(env, clip):
    folder = jobs.new_analysis(clip.name, input_path=clip, annotated=True)
    assert folder.parent == env.analyses
    jobs.start_analysis(folder)
    status = wait_done(folder)
    assert status.state == jobs.FINISHED, (status.error, (folder / "job.log").read_text()[-2000:])
    assert status.summary["frames"] == 28 and status.summary["distinct_face_ids"] == 4
    assert (status.frames, status.total) == (28, 28) and status.fraction == 1.0
    assert len(rows_of(folder / "rows.csv")) == status.summary["faces"] == 40
    assert (folder / "annotated.mp4").stat().st_size > 0
    assert sorted(p.name.split("-")[0] for p in (folder / "faces").glob("*.png"))  # thumbnails
    assert [a.id for a in jobs.list_analyses()] == [folder.name]


def test_a_threshold_outside_0_to_1_is_refused(env, clip):
    with pytest.raises(ValueError, match="uncertain_below"):
        jobs.new_analysis(clip.name, input_path=clip, uncertain_below=1.5)
    assert not env.analyses.exists() or not any(env.analyses.iterdir())  # no folder left


def test_an_uploaded_input_is_kept_in_its_folder(env, clip):
    folder = jobs.new_analysis("my talk?.mp4", data=clip.read_bytes())
    assert (folder / "input" / "my-talk-.mp4").read_bytes() == clip.read_bytes()
    summary = jobs.run_analysis(folder)
    assert summary["state"] == jobs.FINISHED and summary["frames"] == 28
    assert jobs.read_status(folder).name == "my talk?.mp4"


def test_an_analysis_classifies_each_face_with_its_mirror_image_unless_told(env, clip):
    confidences = {}
    for mirror in (True, False):
        folder = jobs.new_analysis(clip.name, input_path=clip, mirror=mirror)
        assert jobs.read_status(folder).mirror is mirror
        assert jobs.run_analysis(folder)["state"] == jobs.FINISHED
        confidences[mirror] = [float(r["confidence"]) for r in rows_of(folder / "rows.csv")]
    assert len(confidences[True]) == len(confidences[False]) == 40
    assert confidences[True] != confidences[False]
    folder = jobs.new_analysis(clip.name, input_path=clip)
    assert jobs.read_status(folder).mirror is True  # the default
    job = json.loads((folder / "job.json").read_text())
    del job["mirror"]  # a job written before the option: one view, as it ran then
    (folder / "job.json").write_text(json.dumps(job))
    assert jobs.read_status(folder).mirror is False
    assert jobs.run_analysis(folder)["state"] == jobs.FINISHED
    assert [float(r["confidence"]) for r in rows_of(folder / "rows.csv")] == confidences[False]


def test_stopping_keeps_the_rows_so_far(env, tmp_path):
    long_clip = write_video(tmp_path / "long.mp4", [3] * 400)
    folder = jobs.new_analysis(long_clip.name, input_path=long_clip)
    jobs.start_analysis(folder)
    deadline = time.time() + 120
    while jobs.read_status(folder).frames < 5 and time.time() < deadline:
        time.sleep(0.2)
    jobs.stop_analysis(folder)
    status = wait_done(folder)
    assert status.state == jobs.STOPPED and 5 <= status.summary["frames"] < 400
    assert len(rows_of(folder / "rows.csv")) == status.summary["faces"] > 0


def test_a_killed_analysis_reads_as_failed(env, tmp_path):
    long_clip = write_video(tmp_path / "long.mp4", [1] * 400)
    folder = jobs.new_analysis(long_clip.name, input_path=long_clip)
    proc = jobs.start_analysis(folder)
    deadline = time.time() + 120
    while jobs.read_status(folder).frames < 2 and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    status = jobs.read_status(folder)
    assert status.state == jobs.FAILED and "without a summary" in status.error
    assert not (folder / "rows.csv").exists()  # the CSV is renamed into place only at the end


def test_a_bad_input_fails_with_its_reason(env, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    folder = jobs.new_analysis(bad.name, input_path=bad)
    summary = jobs.run_analysis(folder)
    assert summary["state"] == jobs.FAILED and "not a video that can be decoded" in summary["error"]
    assert jobs.read_status(folder).error == summary["error"]


# --- the page ------------------------------------------------------------------------------


def test_the_page_starts_an_analysis_and_shows_its_results(env, clip):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert any("No analysis yet" in i.value for i in at.info)
    at.file_uploader(key="analysis_upload").set_value(
        (clip.name, clip.read_bytes(), "video/mp4"))
    at.slider(key="analysis_uncertain").set_value(0.55)
    assert at.checkbox(key="analysis_mirror").value is True
    at.checkbox(key="analysis_mirror").uncheck()
    at.button[0].click()  # the form's Start
    at.run()
    assert not at.exception, at.exception
    (folder,) = [a.folder for a in jobs.list_analyses()]
    assert wait_done(folder).state == jobs.FINISHED
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Frames analysed"] == "28" and metrics["Faces (rows)"] == "40"
    assert len(at.get("plotly_chart")) >= 3  # one timeline per face
    shares = at.dataframe[0].value  # the shares table comes first
    assert list(shares.columns[:2]) == ["face_id", "frames"] and shares["frames"].sum() == 40
    assert shares.columns[-1] == "uncertain" and jobs.read_status(folder).uncertain_below == 0.55
    assert jobs.read_status(folder).mirror is False
    assert any("one view of each face" in c.value for c in at.caption)
    rows = rows_of(folder / "rows.csv")
    unsure = sum(r["uncertain"] == "true" for r in rows) / len(rows)  # as the CSV flags them
    assert unsure == sum(float(r["confidence"]) < 0.55 for r in rows) / len(rows)
    assert abs(shares["uncertain"] @ shares["frames"] / 40 - unsure) < 1e-9
    downloads = at.get("download_button")
    assert len(downloads) == 2  # the CSV and the annotated video


def test_the_page_refuses_a_bad_path_and_goes_on(env, tmp_path):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.text_input(key="analysis_path").set_value(str(tmp_path / "nope.mp4"))
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert any("no such file" in e.value for e in at.error)
    assert jobs.list_analyses() == []
