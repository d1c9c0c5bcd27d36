"""fer_core.models: loading is safe (Keras safe mode: no Lambda code runs), a damaged file is
called damaged, an uploaded model is checked (format, size, bombs, compute cost), and every
registered model trains whatever the size of its last batch."""

from __future__ import annotations

from pathlib import Path

import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from child_python import REPO, python
from fer_core import catalog, paths, runs
from sample_files import zip_bytes

pytestmark = pytest.mark.usefixtures("fer_dirs")


# =============================================================== safe loading


def _lambda_model_file(folder: Path, marker: Path) -> Path:
    """A .keras file whose Lambda layer would create `marker` if its code ever ran."""
    import keras

    # A real Python lambda (a named function is saved by name only): Keras saves its bytecode.
    touch_marker = eval(  # the test builds the hostile file it then refuses
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x * 2.0)[1]")
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(touch_marker)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    marker.unlink(missing_ok=True)  # building the model called it once
    path = folder / "lambda.keras"
    model.save(path)
    return path


def test_load_model_refuses_lambda_layers(tmp_path) -> None:
    """Security: load_model uses Keras safe mode: a Lambda layer's code is refused, not run."""
    from fer_core.models import load_model

    marker = tmp_path / "pwned"
    path = _lambda_model_file(tmp_path, marker)
    with pytest.raises(ValueError, match=r"not a loadable Keras model.*(Lambda|safe_mode)"):
        load_model(path)
    assert not marker.exists()
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="only native .keras model files are accepted"):
        load_model(h5)
    with pytest.raises(runs.RunError, match=r"must end in \.keras, \.onnx, \.tflite"):
        catalog.resolve(str(h5))



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



# ============================================================ uploaded models


def test_uploaded_models_are_untrusted(tmp_path, monkeypatch) -> None:
    """Security: a model a user uploads is checked before it is kept: the .keras format,
    a size limit, no zip bomb, it must load under safe mode (no Lambda code); the stored
    name comes from the content, and nothing is left behind for a refused file."""
    from fer_core.models import create_model, load_model, save_model_upload

    good = tmp_path / "good.keras"
    create_model("fernet", width=4, convs=1).save(good)
    content = good.read_bytes()
    stored = save_model_upload(content, "../../../etc/my model.keras")
    folder = paths.uploaded_models_dir()
    assert stored.parent == folder and stored.suffix == ".keras" and ".." not in stored.name
    assert load_model(stored).output_shape == (None, 7)
    assert save_model_upload(content, "again.keras") == stored  # same bytes, same file
    assert catalog.resolve(str(stored)).path == stored.resolve()  # usable as a model spec

    marker = tmp_path / "pwned"
    refused = {
        "lambda.keras": (_lambda_model_file(tmp_path, marker).read_bytes(), "Lambda|safe_mode"),
        "model.h5": (content, "only native .keras model files"),
        "big.keras": (content + b"\0" * 200, "more than the 0 MB allowed"),
        "text.keras": (b"just some text", "not a Keras model file"),
        "cut.keras": (content[: len(content) // 2], "not a Keras model file"),
        "other.keras": (zip_bytes({"weights.h5": b"x"}), "no config.json"),
        "bomb.keras": (zip_bytes({"config.json": b"{}", "model.weights.h5": b"\0" * 8 * 2**20}),
                       "zip bomb"),
        "junk-config.keras": (zip_bytes({"config.json": b"{not json", "metadata.json": b"{}"}),
                              "not a loadable Keras model"),
    }
    limit = {"big.keras": len(content) + 100}
    for name, (blob, words) in refused.items():
        with pytest.raises(ValueError, match=words) as err:
            save_model_upload(blob, name, max_bytes=limit.get(name, 100 * 2**20))
        assert str(err.value).startswith(f"upload:{name}"), err.value
    assert not marker.exists()
    assert sorted(p.name for p in folder.iterdir()) == [stored.name]  # nothing else kept



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



# ============================================== every registered model trains


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
    out = python(TRAIN_LAST_BATCHES, {"PYTHONPATH": str(REPO)}, model, str(tmp_path),
                  timeout=600)
    assert out.returncode == 0, f"{model}: exit {out.returncode}\n{out.stderr[-3000:]}"
    assert out.stdout.count("finished") == 3, out.stdout

