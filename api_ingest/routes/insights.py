"""GET /insights: the gold aggregates the dashboard shows (200 Insights | 503)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api_ingest.deps import DatabaseDep
from api_ingest.routes.common import READ_ERRORS, mongo_or_503
from api_ingest.views import Insights
from lakehouse import serving

router = APIRouter(prefix="/insights", tags=["insights"])


@router.get("", response_model=Insights, responses={503: READ_ERRORS[503]})
def get_insights(db: DatabaseDep) -> dict[str, Any]:
    """The gold aggregates, with the time of the micro-batch that computed them."""
    with mongo_or_503():
        return serving.insights(db)
