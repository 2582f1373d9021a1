# One image for the API, the streaming job (driver), the Spark master/worker and the dashboard.
# The jars come from the same pom.xml the local stack uses.
FROM maven:3.9.9-eclipse-temurin-17 AS jars
WORKDIR /build
COPY pom.xml .
RUN mvn -B -q -P spark-connectors dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory=/build/jars/spark

FROM python:3.11-slim-bookworm AS app
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 PYTHONUNBUFFERED=1 SPARK_JARS_DIR=/app/build/jars/spark
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY --from=jars /build/jars/spark /app/build/jars/spark
COPY . .
RUN pip install --no-cache-dir --no-deps -e . && python -m spark_jobs.session /app/build/spark-defaults.conf

FROM app AS notebook
RUN pip install --no-cache-dir jupyterlab==4.4.10
