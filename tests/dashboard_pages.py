"""Opening the dashboard's pages under Streamlit's AppTest, and reading what they show (shared by the unit
and integration tests of the dashboard)."""

from __future__ import annotations

import base64
import importlib
import json
import sys
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT

ENTRY = PROJECT_ROOT / "dashboard" / "app.py"
# Each page's module, relative to the entry, as AppTest.switch_page takes it; None: the default (Overview).
PAGES = {
    "Overview": None,
    "Categories": "views/categories.py",
    "Products": "views/products.py",
    "Trends": "views/trends.py",
    "Pipeline": "views/pipeline.py",
    "Data browser": "views/browser.py",
}


def open_page(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], page: str = "Overview", **replaced: Any
) -> AppTest:
    """The app under `environment`, run once on `page`. Project modules are dropped from sys.modules first
    (the app reads its settings when they are imported); `replaced` names functions of dashboard.queries
    (or, as "serving__<name>", of lakehouse.serving) replaced in the fresh modules the app then imports."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for module in [m for m in sys.modules if m.split(".")[0] in ("lakehouse", "dashboard")]:
        monkeypatch.delitem(sys.modules, module)
    for name, replacement in replaced.items():
        module_name, _, function = name.rpartition("__")
        module = importlib.import_module("lakehouse.serving" if module_name == "serving" else "dashboard.queries")
        monkeypatch.setattr(module, function, replacement)
    app = AppTest.from_file(str(ENTRY), default_timeout=60)
    if PAGES[page] is not None:
        app.switch_page(PAGES[page])
    return app.run()


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def infos(app: AppTest) -> list[str]:
    return [info.value for info in app.info]


def captions(app: AppTest) -> list[str]:
    """The page's captions, without the sidebar's (which names the database)."""
    return [caption.value for caption in app.main.caption]


def values(array: list | dict) -> list:
    """A Plotly trace array: a plain list, or (Plotly 6) base64 bytes with a dtype."""
    if isinstance(array, list):
        return array
    return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()


def charts(app: AppTest) -> dict[str, dict]:
    """Every chart's spec (data, layout), by the start of its title (up to the first ' (' or ' —')."""
    found = {}
    for element in app.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        found[spec["layout"]["title"]["text"].split(" (")[0].split(" —")[0]] = spec
    return found


def traces(app: AppTest, title: str) -> dict[str, dict]:
    """The traces of the chart titled `title`, by trace name ("" when it has none)."""
    return {trace.get("name", ""): trace for trace in charts(app)[title]["data"]}


def assert_no_page_failed(app: AppTest) -> None:
    assert not app.exception
    assert not [e.value for e in app.error]
