ALTER FUNCTION hot_rank(numeric, timestamptz) RENAME TO hot_rank_v1;
