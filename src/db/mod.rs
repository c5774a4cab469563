//! Database connection, migrations and the embedded cluster.
