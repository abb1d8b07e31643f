"""Reference implementation of the city-level licence registry's receiving side (市级证照库).

It stands for another government's system: it has its own database (its own SQLAlchemy MetaData,
never our Alembic), its own start command (``python -m city_registry serve --port P``) and imports
nothing of the district's code. The protocol is documented in docs/city_registry.md.
"""
