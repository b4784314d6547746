"""The relational schema and the SQL store shared by the SQLite and PostgreSQL plugins."""
