CREATE TABLE activity (
    id bigint GENERATED ALWAYS AS IDENTITY,
    ap_id text NOT NULL,
    data jsonb NOT NULL,
    published timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (published);
CREATE TABLE activity_2025 PARTITION OF activity FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE activity_2026 PARTITION OF activity FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
