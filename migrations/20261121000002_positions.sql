-- Courier GPS positions. One row per fix; a duplicate (same courier and fix time) is stored once.
--
-- With the timescaledb extension available, and not switched off for this database or session
-- (`SET courier.timescaledb = 'off'`, or `ALTER DATABASE ... SET courier.timescaledb = 'off'`),
-- positions is a hypertable chunked by day. Otherwise it is a table natively range-partitioned
-- by day with the same columns and indexes, a default partition so no row is ever refused, and
-- `positions_ensure_partitions` to create the coming days' partitions.

CREATE FUNCTION positions_use_timescaledb() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('courier.timescaledb', true), '') NOT IN ('off', 'false', '0')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
$$;

DO $$
DECLARE
    columns text := $cols$
        courier_id   text NOT NULL,
        device_id    text NOT NULL,
        fix_time     timestamptz NOT NULL,
        received_at  timestamptz NOT NULL DEFAULT now(),
        lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
        speed_mps    real,
        heading_deg  real,
        altitude_m   real,
        accuracy_m   real,
        battery      real,
        source       smallint NOT NULL DEFAULT 0
    $cols$;
BEGIN
    IF positions_use_timescaledb() THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE format('CREATE TABLE positions (%s)', columns);
        PERFORM create_hypertable('positions', 'fix_time',
                                  chunk_time_interval => INTERVAL '1 day');
    ELSE
        EXECUTE format('CREATE TABLE positions (%s) PARTITION BY RANGE (fix_time)', columns);
        CREATE TABLE positions_default PARTITION OF positions DEFAULT;
    END IF;
    -- Both: one row per courier and fix time, which is also the courier-and-time index.
    CREATE UNIQUE INDEX positions_courier_time_idx ON positions (courier_id, fix_time DESC);
END $$;

-- Creates the daily partitions covering [from_day, from_day + days) on a natively partitioned
-- positions table; does nothing on a hypertable. Returns how many partitions it created. Rows
-- already in the default partition for a day are moved into the new partition.
CREATE FUNCTION positions_ensure_partitions(from_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    part text;
    created integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table pt
                   JOIN pg_class c ON c.oid = pt.partrelid
                   WHERE c.relname = 'positions' AND c.relnamespace = 'public'::regnamespace) THEN
        RETURN 0;
    END IF;
    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        part := format('positions_p%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE positions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format(
                'WITH moved AS (DELETE FROM positions_default WHERE fix_time >= %L AND fix_time < %L RETURNING *) '
                'INSERT INTO %I SELECT * FROM moved', d, d + 1, part);
            EXECUTE format('ALTER TABLE positions ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           part, d, d + 1);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

SELECT positions_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9);

-- Idempotency keys of consumed messages, so a redelivered message has no second effect.
CREATE TABLE inbox (
    message_id   text PRIMARY KEY,
    routing_key  text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
