""".streamlit/config.toml and the README: the server listens on localhost with XSRF protection."""

from __future__ import annotations

import tomllib

import pytest

from child_python import REPO
from fer_core import uploads

pytestmark = pytest.mark.usefixtures("fer_dirs")


def test_server_listens_on_localhost_with_xsrf_protection() -> None:
    """Security: .streamlit/config.toml binds 127.0.0.1 and keeps XSRF protection on; the
    README says how to expose the app deliberately and why the camera needs localhost or
    HTTPS."""
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert server["maxUploadSize"] * 2**20 <= uploads.MAX_UPLOAD_BYTES  # the loader's limit fits
    readme = (REPO / "README.md").read_text()
    assert "--server.address" in readme and "HTTPS" in readme and "localhost" in readme

