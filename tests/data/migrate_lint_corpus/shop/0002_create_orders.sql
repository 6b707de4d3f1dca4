CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    status text NOT NULL,
    total_cents bigint NOT NULL CHECK (total_cents >= 0),
    channel text NOT NULL DEFAULT 'web',
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
