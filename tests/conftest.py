"""Test-wide set-up: the tests' own runtime folder and ports, so they never touch a running `make run`.

This runs before any project module is imported, so the shared `settings` object sees these values.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_ENVIRONMENT = {
    "RUNTIME_DIR": str(PROJECT_ROOT / "var" / "test"),
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
    # A user's exported SPARK_MASTER (README: Running on a cluster) would send every test's Spark to that cluster.
    "SPARK_MASTER": "local[2]",
    "MONGO_URI": "mongodb://127.0.0.1:27117/",
    "API_PORT": "18000",
    "API_URL": "http://127.0.0.1:18000",
    "DASHBOARD_PORT": "18501",
    "STREAM_TRIGGER_SECONDS": "1",
}
os.environ.update(TEST_ENVIRONMENT)

SHARED_DATASET = PROJECT_ROOT.parent / "shared" / "dataset"
SAMPLE_DATASET = PROJECT_ROOT / "dataset" / "sample"


@pytest.fixture(scope="session")
def spark():
    from spark_jobs.session import build_spark

    session = build_spark("tests")
    yield session
    session.stop()


@pytest.fixture
def shared_dataset() -> Path:
    if not (SHARED_DATASET / "amazon_products_sample.csv").exists():
        pytest.skip(f"the shared real sample is absent from {SHARED_DATASET}")
    return SHARED_DATASET


def load_dashboard(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]):
    """The Streamlit app under `environment`, run once. Project modules are dropped from sys.modules first,
    because the app reads its settings when they are imported."""
    import sys

    from streamlit.testing.v1 import AppTest

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for module in [m for m in sys.modules if m.split(".")[0] in ("lakehouse", "dashboard")]:
        monkeypatch.delitem(sys.modules, module)
    return AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60).run()
