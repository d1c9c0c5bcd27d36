"""Evaluate: judge a run (or the shipped model) on a split, browse its mistakes, see why.

A thin view over `fer_core.evaluate` (metrics, cached predictions, mistakes),
`fer_core.eval_report` (tables), `fer_core.charts` (heatmaps), `fer_core.gradcam` and
`ui.eval_views`. Predictions are cached in the run folder by `fer_core`, so reopening a run
and split is instant; the CLI shares the cache.
"""

from __future__ import annotations

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
import numpy as np
import streamlit as st

from fer_core import catalog, eval_report
from fer_core import evaluate as ev
from fer_core.charts import confusion_diff_figure, confusion_matrix_figure, reliability_figure
from fer_core.data import save_upload
from fer_core.display import enlarge, row_name
from fer_core.labels import EMOTIONS
from fer_core.paths import default_model_path
from fer_core.text import escape_markdown
from ui.eval_views import evaluate_or_error, mistakes_gallery, training_overlap_note
from ui.frame import page_setup
from ui.model_upload import with_uploaded_model
from ui.models import loaded_model
from ui.state import DataError, cached_dataset, load_active_dataset, show_dataset_banner

UPLOAD = "Upload a FER-format CSV…"
ALL_ROWS = "all"
GALLERY_SIZE = 24
GALLERY_COLUMNS = 6
NONE = "—"

page_setup(__file__)

st.title("Evaluate")
st.caption("Pick a model and a split: metrics, confusion matrix, mistakes and Grad-CAM.")

# any run with weights, even one still training, newest first; the shipped model last
# and after each model its exported .onnx/.tflite files
# (a model uploaded in the sidebar first)
specs = with_uploaded_model(
    {ref.spec: ref for ref in catalog.choices(finished_only=False, default_first=False,
                                              exports=True)},
    key="eval_model_file", select_key="eval_model")
if not specs:
    st.info("No model to evaluate yet: train one on the Train page (or ship "
            f"`{default_model_path()}`), then come back.")
    st.stop()

left, right = st.columns([3, 2])  # run labels are long, split names short
spec = left.selectbox("Model", list(specs), format_func=lambda s: specs[s].label,
                      key="eval_model")

try:
    dataset = load_active_dataset()
except DataError as exc:
    st.error(f"The active dataset cannot be used: {exc}. Choose another on the Dataset page.")
    st.stop()
split_options = [*dataset.splits(), UPLOAD]  # Training, PublicTest, PrivateTest first
split = right.selectbox("Split", split_options, key="eval_split",
                        index=split_options.index("PublicTest") if "PublicTest" in split_options
                        else 0)

if split == UPLOAD:
    upload = st.file_uploader("FER-format file (emotion, pixels[, Usage]): .csv, .csv.gz or .zip",
                              type=["csv", "gz", "zip"], key="eval_upload")
    if upload is None:
        st.stop()
    try:  # kept on disk by content, then loaded through the shared cached loader
        dataset = cached_dataset(str(save_upload(upload.getvalue(), upload.name)),
                                 label=f"upload:{upload.name}")
    except DataError as exc:
        st.error(f"That file cannot be used: {exc}")
        st.stop()
    show_dataset_banner(dataset)  # the evaluated file, not the active dataset above
    rows = st.selectbox("Rows", [ALL_ROWS, *dataset.splits()], key="eval_upload_rows")
    split_name = rows
    images, labels = (dataset.images, dataset.labels) if rows == ALL_ROWS else dataset.split(rows)
    face_rows = np.arange(len(dataset)) if rows == ALL_ROWS else dataset.rows(rows)
else:
    split_name = split
    images, labels = dataset.split(split)
    face_rows = dataset.rows(split)  # faces are named by their dataset row, as on Dataset

entry = ev.entry_name(dataset.source, split_name)
tta = st.toggle("Test-time augmentation (average each face with its mirror image)",
                key="eval_tta")
if flip_note := eval_report.builtin_flip_note(specs[spec].path):
    st.caption(flip_note)

result = evaluate_or_error(spec, images, labels, entry, tta, dataset.source)
if result is None:
    st.stop()

tab_metrics, tab_calibration, tab_mistakes, tab_compare = st.tabs(
    ["Metrics", "Calibration", "Mistakes and Grad-CAM", "Compare"])

with tab_metrics:
    cols = st.columns(3)
    if result.tta:
        cols[0].metric("Accuracy (TTA)", f"{result.accuracy:.2%}",
                       delta=f"{result.accuracy - result.accuracy_without_tta:+.2%} vs plain")
        cols[1].metric("Accuracy without TTA", f"{result.accuracy_without_tta:.2%}")
    else:
        cols[0].metric("Accuracy", f"{result.accuracy:.2%}")
    cols[-1].metric("Macro-F1", f"{result.macro_f1:.3f}")
    if dataset.synthetic:  # the first number a new user sees: say what it means
        st.info(eval_report.demo_set_note(specs[spec].trained_on), icon=":material/info:")
    st.caption(f"{len(labels):,} faces of {dataset.source} · {split_name}. A class the model "
               "never predicts has precision 0; one absent from the split has recall 0 and is "
               "left out of the macro-F1.")
    if split_name in dataset.splits():
        training_overlap_note(dataset, split_name, images,
                              f"{dataset.source}:{split_name}:{len(images)}",
                              run_dropped=specs[spec].dropped_test_overlap)
    st.dataframe(eval_report.per_class_table(result).style.format(
        {"precision": "{:.3f}", "recall": "{:.3f}", "f1": "{:.3f}"}), key="eval_table")
    normalized = st.radio("Confusion matrix shows", ["counts", "row %"], horizontal=True,
                          key="eval_cm_mode") == "row %"
    st.plotly_chart(confusion_matrix_figure(result.confusion, normalized=normalized),
                    key="eval_cm_chart", on_select="rerun", selection_mode="points")

with tab_calibration:
    curves = eval_report.calibration_curves(result)
    if curves is None:
        st.info("No faces to measure calibration on.")
    else:
        cal, bins = curves
        c1, c2, c3 = st.columns(3)
        c1.metric("ECE before its temperature" if cal.stored else "Expected calibration error",
                  f"{cal.ece_before:.3f}")
        c2.metric(f"ECE at {'its' if cal.stored else 'a fitted'} temperature "
                  f"{cal.temperature:.2f}", f"{cal.ece_after:.3f}",
                  delta=f"{cal.ece_after - cal.ece_before:+.3f}", delta_color="inverse")
        c3.metric("Log-loss (before → after)", f"{cal.nll_before:.3f} → {cal.nll_after:.3f}")
        st.caption(eval_report.calibration_note(cal, split_name))
        if stored := eval_report.stored_temperature_note(specs[spec].path):
            st.caption(stored)
        st.plotly_chart(reliability_figure(bins), key="eval_reliability")

with tab_mistakes:
    # a click on a heatmap cell picks it; the two boxes pick it too
    clicked = (st.session_state.get("eval_cm_chart") or {}).get("selection", {}).get("points")
    if clicked and clicked != st.session_state.get("eval_cm_last_click"):
        st.session_state["eval_cm_last_click"] = clicked
        if cell := eval_report.clicked_cell(clicked):
            st.session_state["eval_true"], st.session_state["eval_pred"] = cell
    c1, c2 = st.columns(2)
    true_name = c1.selectbox("True class", EMOTIONS, key="eval_true")
    if "eval_pred" not in st.session_state:  # start on the true class's commonest mistake
        commonest = eval_report.commonest_mistake(result.confusion, EMOTIONS.index(true_name))
        st.session_state["eval_pred"] = EMOTIONS[commonest]
    pred_name = c2.selectbox("Predicted class", EMOTIONS, key="eval_pred")
    t, p = EMOTIONS.index(true_name), EMOTIONS.index(pred_name)
    mistakes = ev.top_mistakes(result, t, p, k=GALLERY_SIZE)
    what = "correct answers" if t == p else "mistakes"
    st.write(f"**{int(result.confusion[t, p]):,}** faces of *{true_name}* predicted *{pred_name}*; "
             f"the {min(len(mistakes), GALLERY_SIZE)} most confident {what} first.")
    mistakes_gallery(images, mistakes, face_rows, columns=GALLERY_COLUMNS)

    if mistakes:
        st.subheader("Grad-CAM: where the model looked")
        g1, g2 = st.columns(2)
        face = g1.selectbox("Face", [m.index for m in mistakes], key="eval_cam_face",
                            format_func=lambda i: row_name(face_rows[i]))
        target = g2.selectbox("Class to explain", ["predicted", *EMOTIONS], key="eval_cam_class")
        loaded = loaded_model(specs[spec])
        from fer_core.gradcam import gradcam, overlay

        try:
            if loaded.model is None:
                raise ValueError(eval_report.no_gradcam_reason(specs[spec].path))
            with loaded.lock:
                cam, cls, probs = gradcam(loaded.model, images[face],
                                          None if target == "predicted" else EMOTIONS.index(target))
        except ValueError as exc:
            st.info(f"Grad-CAM is not available for this model: {exc}")
        else:
            v1, v2 = st.columns(2)
            v1.image(enlarge(images[face], 4), caption=row_name(face_rows[face]), width=192)
            v2.image(overlay(images[face], cam, scale=4), width=192,
                     caption=eval_report.gradcam_caption(probs, cls, specs[spec].path))

with tab_compare:
    others = [s for s in specs if s != spec]
    if not others:
        st.info("Comparing needs a second model: train another run on the **Train** page "
                "(or ship a default model), then pick it here to see both side by side.")
    other = st.selectbox("Compare with", [NONE, *others], key="eval_compare",
                         format_func=lambda s: s if s == NONE else specs[s].label,
                         disabled=not others)
    if other != NONE:
        result_b = evaluate_or_error(other, images, labels, entry, tta, dataset.source)
        if result_b is not None:
            cmp = ev.compare(result, result_b)
            summary, per_class = eval_report.comparison_tables(cmp)
            st.caption(f"A = {escape_markdown(specs[spec].label)}  ·  "
                       f"B = {escape_markdown(specs[other].label)}")
            if views := eval_report.views_note(result, result_b):
                st.caption(views)
            st.dataframe(summary.style.format("{:+.3f}", subset=["B - A"])
                         .format("{:.3f}", subset=["A", "B"]), key="eval_cmp_summary")
            st.dataframe(per_class.style.format("{:+.3f}").format("{:.3f}",
                                                                  subset=["F1 A", "F1 B"]),
                         key="eval_cmp_classes")
            st.markdown("**Where each fails**: the class each one's faces are most often "
                        "mistaken for, and the share of them that goes there")
            st.dataframe(eval_report.failure_table(cmp).style.format(
                "{:.1%}", subset=["A share", "B share"]), key="eval_cmp_failures")
            left, right = st.columns(2)
            for col, tag, res in ((left, "A", result), (right, "B", result_b)):
                col.plotly_chart(confusion_matrix_figure(
                    res.confusion, normalized=True, title=f"{tag}: row-normalised confusion"),
                    key=f"eval_cmp_cm_{tag}")
            st.plotly_chart(confusion_diff_figure(
                cmp.confusion_diff, title="Row-normalised confusion, B - A (points)"),
                key="eval_cmp_chart")
