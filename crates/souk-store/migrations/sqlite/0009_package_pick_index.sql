-- The package a reservation picks (soonest expiry, never-expiring last, then oldest) read straight
-- from an index in the order the hot path wants it, instead of through a temporary sort b-tree per
-- reservation. It covers the old (appid, service_id) index, which goes.
CREATE INDEX packages_pick ON packages (appid, service_id, (expires_at_ms IS NULL), expires_at_ms, created_at_ms, package_id);
DROP INDEX packages_appid_service;
