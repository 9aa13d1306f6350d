"""Data quality gates (Great Expectations) between lakehouse layers."""
