-- What the dispatcher keeps beyond the core tables: an order's planned drop-off, why it waits or
-- failed, its customer tracking id, how often it moved and a fingerprint of the kitchen's
-- original body; who made each timeline entry; each courier's current route under a
-- per-courier sequence number; and the transactional outbox of events for the `dispatch`
-- exchange.

ALTER TABLE orders
    ADD COLUMN dropoff_eta       timestamptz,
    ADD COLUMN failed_reason     text,
    ADD COLUMN unassigned_reason text,
    ADD COLUMN tracking_id       text UNIQUE,
    ADD COLUMN moves             integer NOT NULL DEFAULT 0 CHECK (moves >= 0),
    ADD COLUMN spec_hash         text NOT NULL DEFAULT '',
    ADD COLUMN finished_at       timestamptz;

CREATE INDEX orders_restaurant_idx ON orders (restaurant_id, placed_at DESC, id DESC);
CREATE INDEX orders_placed_idx ON orders (placed_at DESC, id DESC);

ALTER TABLE order_events ADD COLUMN actor text NOT NULL DEFAULT 'system';

-- A courier's current planned stops; `seq` grows by one with every change the courier is told.
CREATE TABLE courier_routes (
    courier_id  text PRIMARY KEY REFERENCES couriers (id) ON DELETE CASCADE,
    seq         bigint NOT NULL CHECK (seq > 0),
    stops       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events for the `dispatch` exchange, written in the transaction of the change they report;
-- the relay publishes them with publisher confirms and then sets `sent_at`.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   text NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL;
