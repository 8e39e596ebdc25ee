-- The dispatcher's core tables: couriers and their phones, API tokens, orders, assignments and
-- the append-only order event log. Ids are text: orders keep the kitchen's id, couriers get a
-- UUID string from the service.

CREATE TABLE couriers (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    vehicle     text NOT NULL CHECK (vehicle IN ('bike', 'scooter', 'car')),
    capacity    integer NOT NULL CHECK (capacity > 0),
    on_shift    boolean NOT NULL DEFAULT false,
    shift_ends_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A courier's phones, by the id the OsmAnd / Traccar Client app sends.
CREATE TABLE devices (
    device_id   text PRIMARY KEY CHECK (length(device_id) BETWEEN 1 AND 128),
    courier_id  text NOT NULL REFERENCES couriers (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_courier_idx ON devices (courier_id);

-- API tokens, stored as SHA-256 of the secret; the secret itself is shown once at creation.
CREATE TABLE api_tokens (
    id          uuid PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        text NOT NULL CHECK (role IN ('staff', 'kitchen', 'courier')),
    courier_id  text REFERENCES couriers (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((role = 'courier') = (courier_id IS NOT NULL))
);

CREATE TABLE orders (
    id              text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    restaurant_id   text NOT NULL,
    restaurant_lat  double precision NOT NULL CHECK (restaurant_lat BETWEEN -90 AND 90),
    restaurant_lon  double precision NOT NULL CHECK (restaurant_lon BETWEEN -180 AND 180),
    dropoff_lat     double precision NOT NULL CHECK (dropoff_lat BETWEEN -90 AND 90),
    dropoff_lon     double precision NOT NULL CHECK (dropoff_lon BETWEEN -180 AND 180),
    placed_at       timestamptz NOT NULL,
    ready_at        timestamptz NOT NULL CHECK (ready_at >= placed_at),
    deliver_by      timestamptz CHECK (deliver_by IS NULL OR deliver_by >= ready_at),
    size            integer NOT NULL DEFAULT 1 CHECK (size > 0),
    status          text NOT NULL DEFAULT 'created'
                    CHECK (status IN ('created', 'assigned', 'picked_up', 'delivered', 'failed', 'cancelled')),
    courier_id      text REFERENCES couriers (id),
    pinned          boolean NOT NULL DEFAULT false,
    pickup_eta      timestamptz,
    picked_up_at    timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (status NOT IN ('assigned', 'picked_up') OR courier_id IS NOT NULL),
    CHECK (NOT pinned OR courier_id IS NOT NULL)
);
CREATE INDEX orders_open_idx ON orders (status) WHERE status IN ('created', 'assigned', 'picked_up');
CREATE INDEX orders_courier_idx ON orders (courier_id) WHERE courier_id IS NOT NULL;

-- Every assignment an order ever had; the open one has no released_at.
CREATE TABLE assignments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    courier_id   text NOT NULL REFERENCES couriers (id),
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz,
    source       text NOT NULL CHECK (source IN ('optimizer', 'staff')),
    pickup_eta   timestamptz
);
CREATE UNIQUE INDEX assignments_one_open_per_order ON assignments (order_id) WHERE released_at IS NULL;
CREATE INDEX assignments_courier_idx ON assignments (courier_id, assigned_at);

-- What happened to each order, in order; rows are never changed or removed.
CREATE TABLE order_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The AMQP message_id (or HTTP idempotency key) that caused it, for exactly-once effects.
    message_id  text UNIQUE
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

CREATE FUNCTION order_events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER order_events_append_only
    BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_are_append_only();
CREATE TRIGGER order_events_no_truncate
    BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_are_append_only();
