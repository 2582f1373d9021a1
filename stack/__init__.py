"""The embedded local stack: real Kafka, a MongoDB-wire server, the API, the streaming job, the dashboard.

Every process it starts writes its pid to var/pids/<name>.pid and its output to var/logs/<name>.log, so
`python -m stack down` (make down) can stop exactly what was started.
"""
