"""amoCRM (API v4) as a reverse-ETL destination: the write client over the extract's connection and budget."""
