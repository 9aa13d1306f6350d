"""iDent (MS SQL Server clinic databases) → ``bronze.ident_*``: manifest, T-SQL, ODBC client, extract."""
