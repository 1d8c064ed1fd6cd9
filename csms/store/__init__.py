"""CSMS storage: SQLite in the data directory or a PostgreSQL database, versioned migrations."""
