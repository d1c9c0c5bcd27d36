"""The inference back-ends (`fer_core.runtimes`), their thread settings, checked uploads of
`.onnx`/`.tflite` files, and which file runs a model automatically (`fer_core.model_card`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core.files import file_sha256
from fer_core import backends, catalog, model_card, runtimes
from fer_core.export import export_file
from fer_core.infer import Classifier
from fer_core.models import create_model

FACES = np.random.default_rng(4).integers(0, 256, (6, 48, 48), dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small untrained fernet as .keras, .onnx and .tflite (float) files."""
    folder = tmp_path_factory.mktemp("runtimes")
    keras_path = folder / "tiny.keras"
    create_model("fernet", width=4, convs=1).save(keras_path)
    return {"keras": keras_path,
            "onnx": export_file(keras_path, folder / "tiny.onnx"),
            "tflite": export_file(keras_path, folder / "tiny.tflite")}


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_every_runtime_gives_the_keras_probabilities(files, fmt) -> None:
    keras_model = backends.open_face_model(files["keras"])
    other = backends.open_face_model(files[fmt])
    assert isinstance(keras_model, Classifier) and keras_model.runtime == runtimes.KERAS
    assert other.runtime == fmt
    for n in (1, 3, 6, 1):  # batch sizes change back and forth (LiteRT resizes its input)
        np.testing.assert_allclose(other.predict(FACES[:n]), keras_model.predict(FACES[:n]),
                                   atol=1e-5)
    assert other.predict(FACES[:0]).shape == (0, 7)
    assert other.predict(FACES[..., None]).shape == (6, 7)  # NHWC accepted as it is
    with pytest.raises(ValueError, match=r"\(N, 48, 48\[, 1\]\)"):
        other.predict(np.zeros((2, 32, 32), np.uint8))


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_a_shared_model_is_safe_from_several_threads(files, fmt) -> None:
    model = backends.open_face_model(files[fmt])
    expected = {n: model.predict(FACES[:n]) for n in (1, 2, 5)}
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        try:
            for _ in range(30):
                np.testing.assert_allclose(model.predict(FACES[:n]), expected[n], atol=1e-6)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in (1, 2, 5, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_thread_settings(files, monkeypatch) -> None:
    """ONNX Runtime: intra-op pool of inference_threads(), no inter-op pool, no spinning;
    LiteRT the same intra-op count; $FER_INFER_THREADS changes both."""
    monkeypatch.delenv(runtimes.THREADS_ENV, raising=False)
    cores = len(__import__("os").sched_getaffinity(0))
    assert runtimes.inference_threads() == cores
    onnx_model = backends.open_face_model(files["onnx"])
    options = onnx_model.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (cores, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert backends.open_face_model(files["tflite"]).threads == cores
    monkeypatch.setenv(runtimes.THREADS_ENV, "1")
    assert backends.open_face_model(files["onnx"]).session.get_session_options() \
        .intra_op_num_threads == 1
    assert backends.open_face_model(files["tflite"]).threads == 1
    monkeypatch.setenv(runtimes.THREADS_ENV, "lots")
    assert runtimes.inference_threads() == cores


def test_formats_and_missing_runtimes(tmp_path, monkeypatch) -> None:
    assert [runtimes.format_of(n) for n in ("a.keras", "b.ONNX", "c.tflite")] == \
        ["keras", "onnx", "tflite"]
    with pytest.raises(ValueError, match=r"must end in \.keras, \.onnx, \.tflite"):
        runtimes.format_of("model.h5")
    assert runtimes.missing_runtime("onnx") is None
    monkeypatch.setattr(runtimes.importlib.util, "find_spec", lambda name: None)
    assert "pip install onnxruntime" in runtimes.missing_runtime("onnx")
    with pytest.raises(ValueError, match="ONNX Runtime is not installed"):
        backends.open_face_model(tmp_path / "x.onnx")


def test_a_model_that_is_not_a_fer_model_is_refused(tmp_path) -> None:
    import keras

    inputs = keras.Input((48, 48, 1))
    three = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    source = tmp_path / "three.keras"
    keras.Model(inputs, three).save(source)
    for suffix in (".onnx", ".tflite"):
        with pytest.raises(ValueError, match="must give 7 class probabilities"):
            backends.open_face_model(export_file(source, tmp_path / f"three{suffix}"))


# --- uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_an_upload_of_each_format_becomes_a_choice(files, fer_dirs, fmt) -> None:
    data = files[fmt].read_bytes()
    ref = catalog.upload(data, f"mine.{fmt}")
    assert ref.state == catalog.UPLOADED and ref.path.suffix == f".{fmt}"
    assert ref.path.parent == fer_dirs.cache / "models" and ref.path.read_bytes() == data
    assert catalog.resolve(ref.spec).path == ref.path
    assert backends.open_face_model(ref.path).predict(FACES).shape == (6, 7)
    assert not list(ref.path.parent.glob(".*"))  # no temporary left


def _tile_bomb() -> bytes:
    """A valid ONNX graph whose one face becomes a 4,800 x 4,800 tensor (88 MB)."""
    from onnx import TensorProto, helper

    repeats = helper.make_tensor("repeats", TensorProto.INT64, [4], [1, 100, 100, 1])
    graph = helper.make_graph(
        [helper.make_node("Tile", ["x", "repeats"], ["big"]),
         helper.make_node("ReduceMean", ["big"], ["y"], keepdims=0)],
        "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 48, 48, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [repeats])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]) \
        .SerializeToString()


def _external_data(files) -> bytes:
    import onnx

    model = onnx.load(str(files["onnx"]))
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    return model.SerializeToString()


@pytest.mark.parametrize("name, make, problem", [
    ("x.onnx", lambda f: b"\x00garbage" * 10, "not an ONNX model file"),
    ("x.onnx", lambda f: b"", "not an ONNX model file"),
    ("x.tflite", lambda f: b"PK\x03\x04" + bytes(40), "no TFL3 marker"),
    ("x.tflite", lambda f: f["tflite"].read_bytes()[:2000], "not a loadable LiteRT model"),
    ("x.onnx", lambda f: f["onnx"].read_bytes()[:5000], "not an ONNX model file|not a loadable"),
    ("x.onnx", lambda f: _tile_bomb(), "tensor of 88 MB"),
    ("x.onnx", _external_data, "external files"),
    ("x.pt", lambda f: b"x", "only .keras, .onnx and .tflite"),
    ("x.onnx", lambda f: b"x" * (2 * 2**20), "more than the 1 MB allowed"),
])
def test_bad_uploads_are_refused_and_nothing_is_kept(files, fer_dirs, name, make,
                                                     problem) -> None:
    from fer_core.runtime_uploads import save_upload

    with pytest.raises(ValueError, match=rf"upload:{name}: .*({problem})"):
        save_upload(make(files), name, max_bytes=2**20 if "allowed" in problem else 100 * 2**20)
    folder = fer_dirs.cache / "models"
    assert not folder.exists() or not list(folder.iterdir())


# --- which file runs a model --------------------------------------------------------------


def _card(path: Path, source: Path, *, accuracy=0.68, source_accuracy=0.68, ms=1.0,
          source_ms=3.0, sha=None) -> None:
    model_card.write_card(path, {
        "format": runtimes.format_of(path), "int8": ".int8." in path.name,
        "source": {"path": str(source), "sha256": sha or file_sha256(source)},
        "publictest": {"accuracy": accuracy, "source_accuracy": source_accuracy,
                       "top_label_agreement": 0.99},
        "speed": {"ms_single": ms, "source_ms_single": source_ms},
    })


def test_the_fastest_accurate_fresh_export_is_picked(tmp_path, files) -> None:
    source = tmp_path / "best.keras"
    source.write_bytes(files["keras"].read_bytes())
    slow, fast, lossy, stale = (tmp_path / n for n in (
        "best.onnx", "best.int8.onnx", "best.int8.tflite", "best.tflite"))
    for p in (slow, fast, lossy, stale):
        p.write_bytes(b"x")
    assert model_card.fastest_export(source) is None  # no cards yet
    _card(slow, source, ms=2.0)
    _card(fast, source, ms=1.0, accuracy=0.6775)  # 0.25 points lost: within 0.3
    _card(lossy, source, ms=0.5, accuracy=0.676)  # 0.4 points lost
    _card(stale, source, ms=0.1, sha="0" * 64)  # made from other weights
    assert [e.path.name for e in model_card.exports_of(source)] == ["best.int8.onnx", "best.onnx"]
    picked = model_card.fastest_export(source)
    assert picked.path == fast and picked.int8 and picked.speedup == 3.0
    _card(fast, source, ms=4.0)  # slower than Keras on its card: never picked
    _card(slow, source, ms=3.5)
    assert model_card.fastest_export(source) is None
    _card(slow, source, ms=2.0)
    source.write_bytes(files["keras"].read_bytes() + b"\0")  # retrained: every card is stale
    assert model_card.exports_of(source) == []


def test_evaluate_lists_exports_after_their_model(tmp_path, files, fer_dirs) -> None:
    shipped = fer_dirs.default_model(tmp_path / "default.keras")
    shipped.write_bytes(files["keras"].read_bytes())
    onnx_file = tmp_path / "default.onnx"
    onnx_file.write_bytes(files["onnx"].read_bytes())
    (tmp_path / "default.tflite").write_bytes(files["tflite"].read_bytes())  # no card: unlisted
    _card(onnx_file, shipped)
    assert [r.path.name for r in catalog.choices(exports=True)] == ["default.keras", "default.onnx"]
    assert [r.path.name for r in catalog.choices()] == ["default.keras"]
    assert json.loads(model_card.card_path(onnx_file).read_text())["version"] == 1
