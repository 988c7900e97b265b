"""PostgreSQL: connections, migrations, named SQL, retention, dead letters, alert history reads."""
