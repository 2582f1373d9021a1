from __future__ import annotations

import socket

import pandas as pd
import pytest

from dashboard.queries import top_categories
from tests.conftest import load_dashboard


def test_top_categories_sum_the_rest_into_other() -> None:
    stats = pd.DataFrame(
        {"category_name": ["a", "b", "c", "d"], "product_count": [5, 9, 1, 3], "best_seller_count": [4, 0, 0, 1]}
    )
    assert top_categories(stats, 2).to_dict("list") == {
        "category_name": ["b", "a", "Other"],
        "product_count": [9, 5, 4],
    }
    assert top_categories(stats, 1, by="best_seller_count").to_dict("list") == {
        "category_name": ["a", "Other"],
        "product_count": [5, 13],
    }
    assert top_categories(stats, 4)["category_name"].tolist() == ["b", "a", "d", "c"]


def test_an_unreachable_mongodb_gets_a_message_not_a_stack_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    app = load_dashboard(monkeypatch, {"MONGO_URI": f"mongodb://127.0.0.1:{closed_port}/"})
    assert not app.exception
    assert len(app.error) == 4, "every page that reads says it (Products reads only once searched)"
    assert all(f"127.0.0.1:{closed_port}/ is unreachable (ServerSelectionTimeoutError)" in e.value for e in app.error)
