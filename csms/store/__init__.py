"""CSMS storage: an aiosqlite database in the data directory, with versioned migrations."""
