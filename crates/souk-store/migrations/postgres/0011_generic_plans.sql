-- The statements inside the ledger's batch functions keep one generic plan per connection. Left to
-- choose (`plan_cache_mode = auto`), PostgreSQL planned the settlement batch's two statements again on
-- about a quarter to a third of their runs (pg_stat_statements: 1,564 and 1,253 plans for 5,144
-- runs), each time for the plan it already had, since the functions join by key only.
ALTER FUNCTION souk_reserve_batch(TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], BIGINT[], TEXT[])
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION souk_settle_batch(TEXT[], TEXT[], BIGINT[], TEXT[], TEXT[], TEXT[])
    SET plan_cache_mode = force_generic_plan;
