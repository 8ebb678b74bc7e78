"""Storage: one interface (``interface.py``), one SQLAlchemy Core implementation for SQLite and PostgreSQL."""
