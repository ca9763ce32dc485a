"""The container image test: registers its marker (pytest.ini is shared by every app)."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "image: builds the Docker image and runs it (make image-test; skipped elsewhere)",
    )
