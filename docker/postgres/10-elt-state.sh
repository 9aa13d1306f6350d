#!/usr/bin/env bash
# Creates the platform's state-store database beside Airflow's metadata DB (first start of the volume only).
# ELT_STATE_DB_URL in .env points at it: postgresql+psycopg://$POSTGRES_USER:$POSTGRES_PASSWORD@postgres:5432/elt_state
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE elt_state OWNER \"$POSTGRES_USER\""
