"""Alembic environment: migrations run on the connection keyturn.store.migrate hands over."""

from alembic import context

from keyturn.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `keyturn db upgrade`, which holds the migration lock")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
