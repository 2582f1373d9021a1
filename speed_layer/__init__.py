"""The speed layer: a stateless consumer of the product topic that serves each valid product in MongoDB
within a second of its commit to Kafka, ahead of the streaming job's micro-batch (see consumer.py)."""
