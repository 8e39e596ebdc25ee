-- Retention of courier positions, on both storages: drops whole TimescaleDB chunks (Apache
-- edition's drop_chunks) or whole daily partitions whose days end at or before the cutoff, and
-- deletes the few rows older than it from the default partition. Returns how many chunks or
-- partitions were dropped.
CREATE FUNCTION positions_drop_older_than(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    dropped integer := 0;
    part record;
    upper_bound timestamptz;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'positions') THEN
            SELECT count(*) INTO dropped FROM drop_chunks('positions', older_than => cutoff);
            RETURN dropped;
        END IF;
    END IF;
    FOR part IN
        SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'positions'::regclass
    LOOP
        CONTINUE WHEN part.bound = 'DEFAULT';
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper_bound IS NOT NULL AND upper_bound <= cutoff THEN
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    IF to_regclass('positions_default') IS NOT NULL THEN
        DELETE FROM positions_default WHERE fix_time < cutoff;
    END IF;
    RETURN dropped;
END $$;
