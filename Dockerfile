# The Airflow image used by docker-compose.yaml: Apache Airflow 3.3.2 with airflow-dataops and the
# Celery provider, pinned by constraints.txt (the versions the test suite passed with).
#
# `slim-3.3.2-python3.11` rather than the full `3.3.2` image: constraints.txt is locked for Python
# 3.11, and the full image's extra providers (FAB above all: flask-appbuilder needs an older
# SQLAlchemy than the 2.1 this package is tested with) cannot live with that lock.
ARG AIRFLOW_IMAGE=apache/airflow:slim-3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

ARG AIRFLOW_VERSION=3.3.2
WORKDIR /opt/airflow-dataops
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt ./
COPY --chown=airflow:0 airflow_dataops ./airflow_dataops

# Pinning apache-airflow keeps pip from moving Airflow itself (the image docs ask for it); `pip check`
# fails the build if anything in the image does not fit together.
RUN pip install --no-cache-dir -c constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        ".[postgres]" \
        "apache-airflow-providers-celery" \
    && pip check

WORKDIR /opt/airflow
