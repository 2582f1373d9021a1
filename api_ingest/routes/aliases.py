"""The original project's paths, kept as aliases: POST /AmazonProduct and POST /Category."""

from __future__ import annotations

from fastapi import APIRouter

from api_ingest.routes import categories, products
from api_ingest.routes.common import write_route

router = APIRouter(tags=["aliases"])
router.add_api_route("/AmazonProduct", products.post_product, methods=["POST"], **write_route("Product"))
router.add_api_route("/Category", categories.post_category, methods=["POST"], **write_route("Category"))
