"""fer_core: everything the FER workbench does (data, training, evaluation, inference), free of Streamlit."""

from fer_core import cpu  # noqa: F401  (sets the fastest safe TensorFlow CPU flags before TF loads)
from fer_core.labels import EMOTIONS, IMG_SIZE, NUM_CLASSES, SPLITS

__all__ = ["EMOTIONS", "IMG_SIZE", "NUM_CLASSES", "SPLITS"]
