"""The baseline for bench/ingest.py: what the original project did, a new KafkaProducer and a flush per request.

    uvicorn bench.baseline_api:app --port 18101

Same validation models and topics as api_ingest, so the difference measured is the producing.
"""

from __future__ import annotations

import json

from fastapi import FastAPI
from kafka import KafkaProducer

from lakehouse.schemas import Product
from lakehouse.settings import settings

app = FastAPI(title="baseline: one KafkaProducer per request")


def _send(products: list[Product]) -> int:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        value_serializer=lambda value: json.dumps(value).encode(),
    )
    for product in products:
        producer.send(settings.kafka_topic_products, key=product.asin.encode(), value=product.model_dump())
    producer.flush()
    producer.close()
    return len(products)


@app.post("/products", status_code=201)
def post_product(product: Product) -> dict[str, int]:
    return {"accepted": _send([product])}


@app.post("/products/batch", status_code=201)
def post_products(products: list[Product]) -> dict[str, int]:
    return {"accepted": _send(products)}
