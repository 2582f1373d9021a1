"""Every router of the API, gathered in `api_router` (one module per resource)."""

from __future__ import annotations

from fastapi import APIRouter

from api_ingest.routes import aliases, categories, insights, operations, products

api_router = APIRouter()
for module in (products, categories, aliases, insights, operations):
    api_router.include_router(module.router)
