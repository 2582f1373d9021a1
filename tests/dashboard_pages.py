"""Opening the dashboard's pages under Streamlit's AppTest, and reading what they show (shared by the unit
and integration tests of the dashboard)."""

from __future__ import annotations

import importlib
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
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


@dataclass(frozen=True)
class Chart:
    """A Vega-Lite chart as the page sent it: its spec (without the data) and its data as a DataFrame."""

    spec: dict[str, Any]
    data: pd.DataFrame

    @property
    def title(self) -> str:
        title = self.spec.get("title", "")
        return title.get("text", "") if isinstance(title, dict) else title

    @property
    def units(self) -> list[dict[str, Any]]:
        """The chart's single views: itself, or its layers."""
        return self.spec.get("layer", [self.spec])

    @property
    def mark(self) -> dict[str, Any]:
        """The first view's mark, always as a dict ("bar" -> {"type": "bar"})."""
        mark = self.units[0]["mark"]
        return mark if isinstance(mark, dict) else {"type": mark}

    def encoding(self, channel: str) -> dict[str, Any]:
        """The `channel`'s encoding in the first view that has one (e.g. "x": field, type, title, axis)."""
        return next(unit["encoding"][channel] for unit in self.units if channel in unit.get("encoding", {}))

    def values(self, channel: str) -> list:
        """The data of the field drawn on `channel`, row by row as sent."""
        return self.data[self.encoding(channel)["field"]].tolist()

    def series(self) -> dict[str, Chart]:
        """The chart split by its colour field (a line or bar series per value, in the data's order); the whole
        chart as "" when nothing is coloured."""
        if not any("color" in unit.get("encoding", {}) for unit in self.units):
            return {"": self}
        field = self.encoding("color")["field"]
        return {
            str(value): Chart(self.spec, rows.reset_index(drop=True))
            for value, rows in self.data.groupby(field, sort=False, dropna=False)
        }


def tick_labels(chart: Chart, channel: str = "x") -> dict[float, str]:
    """The labels a `labelExpr` of the form `datum.value === 5.0 ? "$5" : ...` gives the axis' tick values."""
    expression = chart.encoding(channel)["axis"]["labelExpr"]
    return {float(value): json.loads(label) for value, label in TICK_LABEL.findall(expression)}


TICK_LABEL = re.compile(r'datum\.value === ([-+.e0-9]+) \? ("(?:[^"\\]|\\.)*")')


def chart_data(proto: Any) -> pd.DataFrame:
    """The one dataset of a chart's proto (Altair's data, which Streamlit sends as Arrow), as a DataFrame."""
    arrow = [dataset.data.data for dataset in proto.datasets] or [proto.data.data]
    assert len(arrow) == 1, "every chart draws one frame"
    return pa.ipc.open_stream(arrow[0]).read_all().to_pandas()


def all_charts(app: AppTest) -> list[Chart]:
    return [Chart(json.loads(e.proto.spec), chart_data(e.proto)) for e in app.get("arrow_vega_lite_chart")]


def title_start(title: str) -> str:
    """A chart's title up to the first ' (' or ' —': what stays when the page's choices change."""
    return title.split(" (")[0].split(" —")[0]


def charts(app: AppTest) -> dict[str, Chart]:
    """Every chart, by the start of its title (title_start)."""
    return {title_start(chart.title): chart for chart in all_charts(app)}


def series(app: AppTest, title: str) -> dict[str, Chart]:
    """The series of the chart titled `title` (its title start), by colour value ("" when it has none)."""
    return charts(app)[title].series()


def assert_no_page_failed(app: AppTest) -> None:
    assert not app.exception
    assert not [e.value for e in app.error]
