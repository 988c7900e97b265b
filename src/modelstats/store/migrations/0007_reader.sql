-- A read-only role for dashboards (Grafana's PostgreSQL data source) and ad-hoc SQL: it may
-- read the samples view, the series dictionary and the alert history, nothing else, and every
-- transaction it opens is read-only with a statement timeout. It cannot log in until someone
-- gives it a password (`ALTER ROLE modelstats_reader LOGIN PASSWORD '...'`; `modelstats run
-- --db-port` does so for the embedded database). The view reads the tables as its owner, so
-- new daily partitions need no grant.
--
-- Roles belong to the whole cluster: when the migrating user may not create roles, the role is
-- left to an administrator (a notice says so) and granted to here only if it exists.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'modelstats_reader') THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            RAISE NOTICE 'role modelstats_reader not created: % may not create roles',
                current_user;
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE modelstats_reader NOLOGIN;
            ALTER ROLE modelstats_reader SET default_transaction_read_only = on;
            ALTER ROLE modelstats_reader SET statement_timeout = '30s';
        EXCEPTION WHEN duplicate_object THEN
            NULL;  -- another database of the cluster was migrated at the same moment
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO modelstats_reader', current_schema());
    GRANT SELECT ON metric_samples, series, alerts, alert_transitions TO modelstats_reader;
END
$$;
