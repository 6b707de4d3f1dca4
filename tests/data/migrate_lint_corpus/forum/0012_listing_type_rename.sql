ALTER TYPE listing_type RENAME TO sort_type;
