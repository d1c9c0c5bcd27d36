"""TensorFlow process settings that must be in place before TensorFlow is imported.

Measured on the project's 2-core AVX2 machines with TF 2.21: oneDNN kernels are off by
default there, and turning them on trains about 1.5x faster. XLA and bfloat16 were slower,
so neither is enabled. Users can still override any of these in their environment.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
