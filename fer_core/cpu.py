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

# aiortc's SRTP binding (pylibsrtp, used by the Live page's WebRTC stream) segfaults the whole
# process when it is first loaded after TensorFlow (`import tensorflow; import aiortc` crashes:
# TensorFlow's global symbols clash with the binding's bundled libsrtp/OpenSSL). Loading it
# first, here, keeps a Streamlit server alive when Live is opened after a page that used TF.
try:
    import pylibsrtp  # noqa: F401
except ImportError:  # WebRTC extras not installed: nothing to protect
    pass
