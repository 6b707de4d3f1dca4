CREATE FUNCTION hot_rank(score numeric, published timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(10000 * log(greatest(1, score + 3)) / power(((EXTRACT(EPOCH FROM (now() - published)) / 3600) + 2), 1.8))::integer
$$;
