-- The reaper's index holds only the charges still `reserved` (its one query: reserved and created
-- before a time). Settling a charge then adds no entry to it: the row's new version, committed or
-- released, is outside the index, where `(state, created_at_ms)` took an entry for every
-- settlement and kept growing with the whole ledger.
DROP INDEX charges_state;
CREATE INDEX charges_reserved ON charges (created_at_ms) WHERE state = 'reserved';
