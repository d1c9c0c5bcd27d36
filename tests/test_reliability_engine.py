"""Issue 18, the engine's part: native crashes in training (oneDNN on AVX-512), decompression
and compute bombs, poisoned evaluation caches, damaged run metadata, Markdown in run names.

Each test names the class of fault it covers. Trainings are tiny (the shared tiny run of
`tests/tiny_run.py`, or a few dozen faces for one epoch); anything that could crash natively
runs in a subprocess, so a crash fails the test instead of killing pytest.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs

REPO = Path(__file__).resolve().parents[1]
HOSTILE_NAMES = (
    "[click me](https://evil.example/phish)",
    "![tracker](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png> **bold** _it_ `code`",
    ":red[alarm] :material/warning: $x^2$ https://evil.example www.evil.example",
    "line one\n# heading\n> quote",
)


@pytest.fixture(autouse=True)
def _private_folders(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))


def _tiny_run(root: Path, name: str = "tiny") -> runs.RunInfo:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_run import make_tiny_run

    return make_tiny_run(root, name)


# =========================================================================== 6: run metadata


def test_read_history_survives_damaged_rows(tmp_path) -> None:
    """Damaged metadata: history.csv rows with an extra field, missing or non-numeric
    epochs, NUL bytes, bad UTF-8 or a huge field never raise; the good rows are kept."""
    run = tmp_path / "run"
    run.mkdir()
    header = ",".join(runs.HISTORY_FIELDS)
    cases = {
        "extra field": f"{header}\n1,1.0,0.5,1.1,0.4,0.01,2.0,EXTRA,MORE\n2,0.9,0.6,1.0,0.5,0.01,2\n",
        "bad epochs": f"{header}\n1,1,1,1,1,1,1\n,1,1,1,1,1,1\nabc,1,1,1,1,1,1\n-3,1,1,1,1,1,1\n"
                      f"2.5,1,1,1,1,1,1\nnan,1,1,1,1,1,1\n2,1,1,1,1,1,1\n",
        "NUL bytes": f"{header}\n1,1,1,1,1,1,1\n2,1\0,1,1,1,1,1\n",
        "short rows": f"{header}\n1\n2,0.5\n",
        "torn quote": f'{header}\n1,1,1,1,1,1,1\n2,"1,1,1,1,1,1\n',
    }
    for what, text in cases.items():
        (run / "history.csv").write_text(text)
        rows = runs.read_history(run)
        assert rows and rows[0]["epoch"] == 1, what
        assert all(isinstance(r["epoch"], int) and r["epoch"] >= 1 for r in rows), what
        assert all(isinstance(k, str) for r in rows for k in r), what
    (run / "history.csv").write_bytes(header.encode() + b"\n1,\xff\xfe,1,1,1,1,1\n")
    assert [r["epoch"] for r in runs.read_history(run)] == [1]
    (run / "history.csv").write_text(f"{header}\n1,{'9' * 200_000},1,1,1,1,1\n")
    assert runs.read_history(run) == []  # a field over csv's limit: nothing usable, no crash


def _stopped_at_two(root: Path, last_json: object) -> runs.RunInfo:
    """The tiny run (4 epochs) made to look stopped after epoch 2, with `last_json` as
    weights/last.json (None: the file is missing)."""
    info = _tiny_run(root)
    runs.write_history(info.dir, runs.read_history(info.dir)[:2])
    runs.update_status(info.dir, state="stopped", epoch=2)
    last = info.dir / "weights" / "last.json"
    if last_json is None:
        last.unlink()
    elif isinstance(last_json, bytes):
        last.write_bytes(last_json)
    else:
        runs.write_json(last, last_json)
    return runs.get_run(info.dir)


@pytest.mark.parametrize("last_json", [None, {}, {"epoch": 99}, {"epoch": 0}, {"epoch": -1},
                                       {"epoch": "2"}, {"epoch": True}, {"epoch": 2.5}, [],
                                       b"", b"{torn", {"epoch": 3}])
def test_resume_point_is_checked_against_the_history(tmp_path, last_json) -> None:
    """Damaged metadata: a missing, empty, garbage or impossible weights/last.json falls
    back to the history's last epoch instead of KeyError or "finished after 99/4"."""
    info = _stopped_at_two(tmp_path, last_json)
    done, history = runs.resume_point(info.dir)
    assert done == 2 and [r["epoch"] for r in history] == [1, 2]


def test_resume_with_a_bad_last_json_trains_the_missing_epochs(tmp_path) -> None:
    """Damaged metadata: resuming a run whose last.json claims 99 epochs trains epochs 3-4
    and finishes 4/4 (the shared tiny run's settings; a few seconds)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_run import demo

    from fer_core.train import resume

    info = _stopped_at_two(tmp_path, {"epoch": 99})
    done = resume(info.dir, dataset=demo())
    assert done.state == "finished" and (done.epoch, done.epochs) == (4, 4), done.error
    assert [r["epoch"] for r in runs.read_history(done.dir)] == [1, 2, 3, 4]


def test_resume_to_fewer_epochs_than_done_is_refused(tmp_path) -> None:
    """Damaged metadata: resuming to fewer epochs in total than already completed is
    refused with a clear message, and neither the config nor the status changes."""
    from fer_core import jobs
    from fer_core.train import resume

    info = _stopped_at_two(tmp_path, {"epoch": 2})
    config_before = (info.dir / "config.json").read_text()
    for call in (lambda: resume(info.dir, epochs=1), lambda: jobs.resume_job(info.dir, epochs=1)):
        with pytest.raises(runs.RunError, match=r"already completed 2 epochs.*at least 2"):
            call()
    assert (info.dir / "config.json").read_text() == config_before
    assert runs.get_run(info.dir).state == "stopped"
    assert jobs.active_job(info.dir.parent) is None


# =========================================================================== 5: poisoned caches


def _poison(eval_dir: Path, how: str) -> None:
    npz = next(eval_dir.glob("*.npz"))
    if how == "empty":
        npz.write_bytes(b"")
    elif how == "truncated":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif how == "garbage":
        npz.write_bytes(os.urandom(4096))
    elif how == "folder":
        npz.unlink()
        npz.mkdir()
    elif how == "pickle":
        npz.write_bytes(b"\x80\x04\x95" + os.urandom(64))
    elif how == "wrong shape":
        np.savez_compressed(npz, probs=np.zeros((3, 7), np.float32))
    elif how == "garbage json":
        next(eval_dir.glob("*.json")).write_bytes(b"\xff\x00 not json")


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage", "folder", "pickle",
                                 "wrong shape", "garbage json"])
def test_a_damaged_eval_cache_is_a_miss(tmp_path, how) -> None:
    """Poisoned caches: an empty, truncated, garbage or mis-shaped eval/*.npz beside an
    intact .json is recomputed (and rewritten) instead of failing every later evaluation."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_run import demo

    from fer_core import evaluate as ev

    info = _tiny_run(Path(os.environ["FER_RUNS_DIR"]))
    images, labels = demo().split("PublicTest")
    first = ev.evaluate_cached(info.id, images, labels, split="PublicTest", tta=True)
    _poison(info.dir / "eval", how)
    again = ev.evaluate_cached(info.id, images, labels, split="PublicTest", tta=True)
    np.testing.assert_allclose(again.probs, first.probs, atol=1e-6)
    third = ev.evaluate_cached(info.id, images, labels, split="PublicTest", tta=True)
    np.testing.assert_allclose(third.probs, first.probs, atol=1e-6)


def test_cache_writes_are_best_effort(tmp_path) -> None:
    """Poisoned caches: `eval/` being a file (or unwritable) does not fail an evaluation
    whose predictions were computed; no temporary file is left behind."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_run import demo

    from fer_core import evaluate as ev

    info = _tiny_run(Path(os.environ["FER_RUNS_DIR"]))
    images, labels = demo().split("PublicTest")
    (info.dir / "eval").rmdir()
    (info.dir / "eval").write_text("not a folder")
    result = ev.evaluate_cached(info.id, images, labels, split="PublicTest")
    assert len(result.labels) == len(labels)
    (info.dir / "eval").unlink()
    (info.dir / "eval").mkdir()
    os.chmod(info.dir / "eval", 0o500)
    try:
        assert ev.evaluate_cached(info.id, images, labels, split="PublicTest").accuracy == \
            result.accuracy
    finally:
        os.chmod(info.dir / "eval", 0o700)
    assert not [p for p in info.dir.rglob("*") if ".tmp" in p.name]


# =========================================================================== 9: Markdown, damaged .keras


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_escape_markdown_renders_literally(name) -> None:
    """Markdown in run names: the escaped text renders as plain text (no link, image,
    HTML, heading, emphasis or code) on one line, showing exactly the original characters."""
    from markdown_it import MarkdownIt

    from fer_core.text import escape_markdown

    escaped = escape_markdown(name)
    html = MarkdownIt("commonmark").render(escaped)
    for tag in ("<a", "<img", "<h1", "<em", "<strong", "<code", "<blockquote"):
        assert tag not in html, (name, html)
    assert "\n" not in escaped and "://" not in escaped and "www." not in escaped
    plain = html.removeprefix("<p>").removesuffix("</p>\n")
    unescaped = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"') \
        .replace("&amp;", "&")
    assert unescaped == " ".join(name.replace("\n", " ").split(" "))


def test_train_page_escapes_run_names(tmp_path, monkeypatch) -> None:
    """Markdown in run names: the Train page shows a hostile run name escaped in its
    subheader, its end-of-run box and the delete confirmation."""
    from streamlit.testing.v1 import AppTest

    from fer_core.text import escape_markdown

    root = Path(os.environ["FER_RUNS_DIR"])
    monkeypatch.chdir(tmp_path)
    name = HOSTILE_NAMES[1]
    runs.rename_run(_tiny_run(root), name)
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    at.button(key="train_delete").click().run()
    bodies = [e.value for kind in ("subheader", "success", "warning", "markdown", "caption")
              for e in getattr(at, kind)]
    assert not [b for b in bodies if "](https" in b], bodies
    assert any(escape_markdown(name) in b for b in (e.value for e in at.subheader))
    assert any(escape_markdown(name) in b for b in (e.value for e in at.success))
    assert any(escape_markdown(name) in b for b in (e.value for e in at.warning))


@pytest.mark.parametrize("cut", ["empty", "half", "last byte", "middle"])
def test_a_damaged_keras_file_is_called_damaged(tmp_path, cut) -> None:
    """Damaged model files: a truncated or corrupted .keras is "damaged or truncated", with
    its path, not Keras's "File not found"."""
    from fer_core.models import create_model, load_model

    good = tmp_path / "good.keras"
    create_model("fernet", width=4, convs=1).save(good)
    data = good.read_bytes()
    damaged = {"empty": b"", "half": data[: len(data) // 2], "last byte": data[:-1],
               "middle": data[: len(data) // 2] + bytes(4096) + data[len(data) // 2 + 4096:]}
    path = tmp_path / f"{cut.replace(' ', '_')}.keras"
    path.write_bytes(damaged[cut])
    with pytest.raises(ValueError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "File not found" not in message
    assert "damaged" in message or "empty" in message, message


# =========================================================================== 4: bombs


def _png(width: int, height: int) -> bytes:
    """A grey PNG declaring width x height whose data is a few rows only (a bomb header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    rows = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(min(height, 4))), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + \
        b",\x00\x00\x00\x00" + struct.pack("<HH", width, height) + b"\x00\x02\x02\x44\x01\x00;"


@pytest.mark.parametrize("make,width,height", [(_png, 20000, 20000), (_png, 13000, 13000),
                                               (_png, 8000, 6000), (_png, 100_000, 500),
                                               (_gif, 65535, 65535), (_gif, 9000, 9000)])
def test_image_bombs_are_refused_before_decoding(make, width, height) -> None:
    """Decompression bombs: an image whose header declares more than 40 megapixels is a
    ValueError naming the file (the Live page's handler), before any pixel is decoded."""
    import tracemalloc

    from fer_core.infer import decode_image

    data = make(width, height)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.img: .*(pixels|too large)"):
            decode_image(data, "bomb.img")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MB allocated"


def test_small_images_still_decode() -> None:
    from PIL import Image

    from fer_core.infer import decode_image

    buf = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 20, 30)).save(buf, "PNG")
    assert decode_image(buf.getvalue(), "ok.png").shape == (32, 64, 3)
    with pytest.raises(ValueError, match="cut.png: not a readable image"):
        decode_image(buf.getvalue()[:40], "cut.png")


def _saved(model, folder: Path, name: str) -> bytes:
    path = folder / name
    model.save(path)
    return path.read_bytes()


def test_compute_bomb_models_are_refused(tmp_path) -> None:
    """Compute bombs: small uploaded .keras files whose one face needs gigabytes (UpSampling
    then a convolution) or tens of GFLOPs, or whose output is not 7 probabilities, are
    ValueErrors saying why, found before (or by a bounded) forward pass; nothing is kept."""
    import keras

    from fer_core.models import save_model_upload
    from fer_core.paths import uploaded_models_dir

    def model(*layers) -> keras.Model:
        inputs = keras.Input((48, 48, 1))
        x = inputs
        for layer in layers:
            x = layer(x)
        return keras.Model(inputs, x)

    def head() -> tuple:
        return keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7, activation="softmax")

    bombs = {
        "upsample.keras": (model(keras.layers.UpSampling2D(100), keras.layers.Conv2D(8, 3), *head()),
                           r"MB per face, more than the 64 MB"),
        "resize.keras": (model(keras.layers.Resizing(5000, 5000), *head()), r"MB per face"),
        "flops.keras": (model(keras.layers.UpSampling2D(4), keras.layers.Conv2D(96, 3, padding="same"),
                              keras.layers.Conv2D(96, 3, padding="same"), *head()),
                        r"GFLOPs, more than the 5 GFLOPs"),
        "output.keras": (model(keras.layers.Flatten(), keras.layers.Dense(3)), r"expected \(1, 7\)"),
    }
    for name, (bomb, words) in bombs.items():
        blob = _saved(bomb, tmp_path, name)
        assert len(blob) < 2 * 2**20
        with pytest.raises(ValueError, match=words) as err:
            save_model_upload(blob, name)
        assert str(err.value).startswith(f"upload:{name}: "), err.value
    assert not list(uploaded_models_dir().iterdir())


def test_model_trial_has_a_time_limit() -> None:
    """Compute bombs: the trial forward pass is refused when it takes longer than its limit."""
    from fer_core.models import create_model
    from fer_core.models.cost import trial_forward

    model = create_model("fernet", width=4, convs=1)
    with pytest.raises(ValueError, match="took more than"):
        trial_forward(model, seconds=0)
    trial_forward(model)  # within the default limit


def test_registered_models_are_within_the_upload_limits() -> None:
    from fer_core.models import create_model, list_models
    from fer_core.models.cost import check_model_cost

    for info in list_models():
        cost = check_model_cost(create_model(info.name))
        assert 0 < cost.flops and 0 < cost.activation_bytes, info.name


# =========================================================================== 1: native crashes


def _python(code: str, env: dict[str, str] | None = None, *args: str,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`code` (with `args`) in a fresh interpreter with this process's environment plus `env`."""
    full = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _onednn_in_child(**env: str) -> str:
    out = _python("import os, fer_core; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])", env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _write_choice(enable: bool) -> Path:
    from fer_core import cpu

    path = cpu.choice_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": cpu.CHOICE_VERSION, "enable": enable,
                                "reason": "test", "probed_at": 0}))
    return path


def test_onednn_is_off_until_a_probe_chose_it_and_the_user_wins(monkeypatch) -> None:
    """Native crashes: oneDNN is not forced on; without a cached probe it is off, a cached
    probe decides, and a value set by the user always wins."""
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    assert _onednn_in_child() == "0"
    assert _onednn_in_child(TF_ENABLE_ONEDNN_OPTS="1") == "1"
    path = _write_choice(True)
    assert _onednn_in_child() == "1"
    assert _onednn_in_child(TF_ENABLE_ONEDNN_OPTS="0") == "0"  # the user's choice
    # a value this module chose (a parent started before the probe) is chosen again
    assert _onednn_in_child(TF_ENABLE_ONEDNN_OPTS="0", FER_ONEDNN_AUTO="1") == "1"
    _write_choice(False)
    assert _onednn_in_child() == "0"
    path.write_text("{garbage")
    assert _onednn_in_child() == "0"


def _crashing_python(folder: Path, monkeypatch, condition: str = "True",
                     sig: str = "SIGSEGV") -> None:
    """Make every new Python process started from here die of `sig` when `condition` holds
    (a sitecustomize on PYTHONPATH): a stand-in for TensorFlow's native crash."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import os, signal\n"
        f"if {condition}:\n    os.kill(os.getpid(), signal.{sig})\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), str(REPO)]))


def test_speed_estimate_runs_in_a_child_and_its_crash_is_a_message(tmp_path, monkeypatch) -> None:
    """Native crashes: timing a config trains in a child process; a segfault there is a
    ProbeError (RuntimeError) naming the signal, and this process lives on."""
    from fer_core.config import TrainConfig
    from fer_core.probe import ProbeError, measure_speed

    config = TrainConfig(model="fernet", model_kwargs={"width": 4, "convs": 1}, batch_size=7,
                         augment=None)
    _crashing_python(tmp_path / "crash", monkeypatch)
    with pytest.raises(ProbeError, match=r"crashed \(SIGSEGV\)"):
        measure_speed(config, steps=1)


def test_speed_estimate_measures_and_reports_config_errors() -> None:
    from fer_core.config import ConfigError, TrainConfig
    from fer_core.probe import measure_speed

    config = TrainConfig(model="fernet", model_kwargs={"width": 4, "convs": 1}, batch_size=7,
                         augment=None)
    estimate = measure_speed(config, steps=2)
    assert 0 < estimate.images_per_second < 1e6 and 0 < estimate.startup_seconds < 600
    with pytest.raises(ConfigError, match="model_kwargs"):
        measure_speed(config.replace(model_kwargs={"depth": 3}), steps=1)


def test_train_page_estimate_survives_a_crash(tmp_path, monkeypatch) -> None:
    """Native crashes: "Estimate time" on the Train page never trains in the server: a
    crash of the timing process is an error message on the page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FER2013_CSV", raising=False)
    _crashing_python(tmp_path / "crash", monkeypatch, sig="SIGABRT")
    st.cache_data.clear()
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=120).run()
    at.number_input(key="train_w_batch_size").set_value(33).run()
    at.button(key="train_estimate").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("Could not time" in e and "crashed (SIGABRT)" in e for e in errors), errors


def test_probe_keeps_onednn_off_when_it_crashes(tmp_path, monkeypatch) -> None:
    """Native crashes: the probe's oneDNN child crashing (as on the AVX-512 CPU) keeps
    oneDNN off, caches that for this CPU, and new processes read it."""
    from fer_core.probe import probe_onednn

    _crashing_python(tmp_path / "crash", monkeypatch,
                     condition="os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '1'", sig="SIGABRT")
    choice = probe_onednn(timeout=120)
    assert choice["enable"] is False and "SIGABRT" in choice["reason"], choice
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    assert _onednn_in_child() == "0"


@pytest.mark.parametrize("on_speed,enable", [(150.0, True), (101.0, False), (60.0, False)])
def test_probe_turns_onednn_on_only_when_safe_and_faster(monkeypatch, on_speed, enable) -> None:
    """Native crashes: oneDNN is chosen only when its child survived and trained faster."""
    from fer_core import probe

    def side(value: str, timeout: float) -> dict:
        speed = on_speed if value == "1" else 100.0
        return {"ok": True, "error": None, "seconds": 1.0, "checks": 18,
                "images_per_second": {"quick": speed, "default": speed}}

    monkeypatch.setattr(probe, "_probe_side", side)
    assert probe.probe_onednn()["enable"] is enable
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    assert _onednn_in_child() == ("1" if enable else "0")


TRAIN_LAST_BATCHES = """
import sys
import numpy as np
import fer_core
from fer_core.config import TrainConfig
from fer_core.data import FerDataset
from fer_core.data.demo import make_demo
from fer_core.models import list_models
from fer_core.pipeline import make_dataset
from fer_core.train import augment_config, build_model, train

name, root = sys.argv[1], sys.argv[2]
info = {i.name: i for i in list_models()}[name]
kwargs = {k: v for k, v in {"width": 4, "convs": 1}.items() if k in info.defaults}
config = TrainConfig(model=name, model_kwargs=kwargs, epochs=1, batch_size=4, augment={},
                     schedule="none")
faces = make_demo(60, seed=5)
rows = np.r_[0:9, 50:55]  # batch 4: 9 training faces end on a batch of 1, 5 validation faces
ds = FerDataset(faces.images[rows], faces.labels[rows],
                np.array(["Training"] * 9 + ["PublicTest"] * 5, dtype=object), "demo", True)
run = train(config, runs_dir=root, dataset=ds)
assert run.state == "finished", run.error
print(name, 9, run.state, flush=True)
model = build_model(config)
for n in (10, 11):  # last batches of 2 (even) and 3 (odd), through the same pipeline
    batches = make_dataset(faces.images[:n], faces.labels[:n], batch_size=4, training=True,
                           augment=augment_config(config), seed=n)
    model.fit(batches, epochs=1, verbose=0)
    model.predict(faces.images[:n, :, :, None], batch_size=4, verbose=0)
    print(name, n, "finished", flush=True)
"""


@pytest.mark.parametrize("model", ["fernet", "kinli2018", "mini_xception", "paul2018"])
def test_every_model_trains_with_odd_even_and_single_last_batches(tmp_path, model,
                                                                  monkeypatch) -> None:
    """Native crashes: every registered model trains (with this machine's CPU settings as
    the project chooses them) when its last batch has 1, 2 or 3 faces; in a subprocess per
    model, so a native crash fails this test instead of killing pytest."""
    from fer_core.models import model_names

    assert set(model_names()) <= {"fernet", "kinli2018", "mini_xception", "paul2018"}, \
        "a new registered model: add it to the parameters of this test"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    out = _python(TRAIN_LAST_BATCHES, {"PYTHONPATH": str(REPO)}, model, str(tmp_path),
                  timeout=600)
    assert out.returncode == 0, f"{model}: exit {out.returncode}\n{out.stderr[-3000:]}"
    assert out.stdout.count("finished") == 3, out.stdout
