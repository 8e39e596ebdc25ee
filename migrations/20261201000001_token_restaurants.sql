-- Kitchen tokens are scoped to the restaurants they act for.
ALTER TABLE api_tokens ADD COLUMN restaurants text[] NOT NULL DEFAULT '{}';

-- New kitchen tokens name at least one restaurant; rows from before are not checked (NOT VALID),
-- so existing unscoped kitchen tokens stay (and see no restaurant).
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_kitchen_has_restaurants
    CHECK (role <> 'kitchen' OR cardinality(restaurants) > 0) NOT VALID;
