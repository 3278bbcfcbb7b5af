-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
-- Airflow's metadata database ("airflow") is created from POSTGRES_DB; airflow-dataops keeps its
-- results store and the demo warehouse in databases of their own, never in Airflow's.
CREATE DATABASE dataops OWNER airflow;
CREATE DATABASE warehouse OWNER airflow;
