-- The ledger batches of migration 0009, with the same arguments, answers and rules, doing their
-- work a batch at a time instead of three statements per entry (the reservation) and one or more
-- per entry (the settlement): PL/pgSQL ran those entry by entry, and a package row updated once per
-- entry left one row version per entry for the next entry's statements to walk.
--
-- Reservation: the idempotency keys that are given are claimed in one statement. Then, per
-- (payer, service) group, the candidate packages are read once, the group's entries are taken
-- from them in the same order of preference as before (soonest expiring first, and only a package
-- that can pay the entry's whole amount and has not expired at the entry's time), and each
-- package touched is updated once with the conditional update of before (`units_left >= taken`,
-- which waits for a concurrent holder of the row and re-checks on what it committed); if another
-- node's batch took units in between so that the package can no longer pay the group's total, the
-- batch raises a serialization failure (below). At the end the charges of the whole batch are
-- inserted in one statement. An entry the candidates cannot pay answers `fallback` (the caller's
-- own transaction then decides and explains), as before. A charge that cannot be inserted (its
-- request id is taken) also raises a serialization failure: then nothing of the batch is kept and
-- every entry falls back to its own transaction, as the Rust side already does for a conflict.
CREATE OR REPLACE FUNCTION souk_reserve_batch(
    request_ids TEXT[],
    payers      TEXT[],
    callers     TEXT[],
    services    TEXT[],
    apis        TEXT[],
    amounts     BIGINT[],
    nows        BIGINT[],
    msg_ids     TEXT[]
) RETURNS TABLE (entry INT, outcome TEXT, package_id TEXT, first_request_id TEXT, first_answer TEXT)
LANGUAGE plpgsql
-- Joins by key only: a plan cached while the tables were small (a seq scan and a hash join) must
-- not stay in use as they grow.
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    n INT := COALESCE(array_length(request_ids, 1), 0);
    outcomes TEXT[] := array_fill(NULL::TEXT, ARRAY[n]);
    taken TEXT[] := array_fill(NULL::TEXT, ARRAY[n]);
    claimed BOOLEAN[] := array_fill(false, ARRAY[n]);
    firsts TEXT[] := array_fill(NULL::TEXT, ARRAY[n]);
    first_answers TEXT[] := array_fill(NULL::TEXT, ARRAY[n]);
    found_request TEXT;
    found_answer TEXT;
    i INT;
    k INT;
    c INT;
    group_end INT;
    least_amount BIGINT;
    earliest BIGINT;
    candidate RECORD;
    hit RECORD;
    cand_ids TEXT[];
    cand_left BIGINT[];
    cand_taken BIGINT[];
    cand_expiry BIGINT[];
    to_insert INT := 0;
    inserted INT;
BEGIN
    -- Idempotency keys: claimed in one statement; an entry whose key was taken answers
    -- `duplicate` with the first call's record (`fallback` if that record vanished meanwhile, or
    -- is another entry's of this batch).
    IF EXISTS (SELECT 1 FROM unnest(msg_ids) AS m(msg_id) WHERE m.msg_id IS NOT NULL) THEN
        FOR hit IN
            INSERT INTO idempotency (caller_appid, client_msg_id, request_id, answer, created_at_ms)
            SELECT e.caller, e.msg_id, e.request_id, NULL, e.now
            FROM unnest(callers, msg_ids, request_ids, nows) AS e(caller, msg_id, request_id, now)
            WHERE e.msg_id IS NOT NULL
            ON CONFLICT (caller_appid, client_msg_id) DO NOTHING
            RETURNING idempotency.request_id
        LOOP
            claimed[array_position(request_ids, hit.request_id)] := true;
        END LOOP;
        FOR i IN 1 .. n LOOP
            IF msg_ids[i] IS NOT NULL AND NOT claimed[i] THEN
                SELECT d.request_id, d.answer INTO found_request, found_answer
                FROM idempotency d WHERE d.caller_appid = callers[i] AND d.client_msg_id = msg_ids[i];
                IF FOUND AND found_request = ANY(request_ids) THEN
                    -- Claimed by an earlier entry of this batch, which may yet reserve nothing
                    -- and give its key up: decided after this batch, on its own.
                    outcomes[i] := 'fallback';
                ELSIF FOUND THEN
                    outcomes[i] := 'duplicate';
                    firsts[i] := found_request;
                    first_answers[i] := found_answer;
                ELSE
                    outcomes[i] := 'fallback';
                END IF;
            END IF;
        END LOOP;
    END IF;

    -- Units, one (payer, service) group of consecutive entries at a time (the caller sorts them;
    -- unsorted entries are still right, a group met twice reads what its first time left).
    i := 1;
    WHILE i <= n LOOP
        group_end := i;
        WHILE group_end < n AND payers[group_end + 1] = payers[i] AND services[group_end + 1] = services[i] LOOP
            group_end := group_end + 1;
        END LOOP;
        least_amount := NULL;
        earliest := NULL;
        FOR k IN i .. group_end LOOP
            IF outcomes[k] IS NULL THEN
                least_amount := LEAST(least_amount, amounts[k]);
                earliest := LEAST(earliest, nows[k]);
            END IF;
        END LOOP;
        IF least_amount IS NOT NULL THEN
            cand_ids := '{}';
            cand_left := '{}';
            cand_taken := '{}';
            cand_expiry := '{}';
            FOR candidate IN
                SELECT p.package_id, p.units_left, p.expires_at_ms FROM packages p
                WHERE p.appid = payers[i] AND p.service_id = services[i]
                  AND (p.expires_at_ms IS NULL OR p.expires_at_ms > earliest) AND p.units_left >= least_amount
                ORDER BY p.expires_at_ms ASC NULLS LAST, p.created_at_ms, p.package_id LIMIT 16
            LOOP
                cand_ids := cand_ids || candidate.package_id;
                cand_left := cand_left || candidate.units_left;
                cand_taken := cand_taken || 0::BIGINT;
                cand_expiry := cand_expiry || candidate.expires_at_ms;
            END LOOP;
            FOR k IN i .. group_end LOOP
                IF outcomes[k] IS NULL THEN
                    FOR c IN 1 .. COALESCE(array_length(cand_ids, 1), 0) LOOP
                        IF cand_left[c] >= amounts[k] AND (cand_expiry[c] IS NULL OR cand_expiry[c] > nows[k]) THEN
                            cand_left[c] := cand_left[c] - amounts[k];
                            cand_taken[c] := cand_taken[c] + amounts[k];
                            taken[k] := cand_ids[c];
                            EXIT;
                        END IF;
                    END LOOP;
                    IF taken[k] IS NULL THEN
                        outcomes[k] := 'fallback';
                    ELSE
                        outcomes[k] := 'reserved';
                        to_insert := to_insert + 1;
                    END IF;
                END IF;
            END LOOP;
            FOR c IN 1 .. COALESCE(array_length(cand_ids, 1), 0) LOOP
                IF cand_taken[c] > 0 THEN
                    UPDATE packages p SET units_left = p.units_left - cand_taken[c]
                    WHERE p.package_id = cand_ids[c] AND p.units_left >= cand_taken[c];
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'a concurrent batch took units from package %', cand_ids[c]
                            USING ERRCODE = 'serialization_failure';
                    END IF;
                END IF;
            END LOOP;
        END IF;
        i := group_end + 1;
    END LOOP;

    -- The batch's charges in one statement.
    IF to_insert > 0 THEN
        INSERT INTO charges (request_id, package_id, payer_appid, caller_appid, service_id, api, units, state, created_at_ms, settled_at_ms)
        SELECT e.request_id, e.package_id, e.payer, e.caller, e.service, e.api, e.amount, 'reserved', e.now, NULL
        FROM unnest(request_ids, taken, payers, callers, services, apis, amounts, nows)
             AS e(request_id, package_id, payer, caller, service, api, amount, now)
        WHERE e.package_id IS NOT NULL
        ON CONFLICT (request_id) DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted <> to_insert THEN
            RAISE EXCEPTION 'a reservation batch met a request id that is already charged'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END IF;

    -- A key claimed for an entry that reserved nothing is given up again.
    FOR i IN 1 .. n LOOP
        IF claimed[i] AND taken[i] IS NULL THEN
            DELETE FROM idempotency d
            WHERE d.caller_appid = callers[i] AND d.client_msg_id = msg_ids[i] AND d.request_id = request_ids[i];
        END IF;
    END LOOP;

    FOR i IN 1 .. n LOOP
        entry := i;
        outcome := outcomes[i];
        package_id := taken[i];
        first_request_id := firsts[i];
        first_answer := first_answers[i];
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Settlement: every charge of the batch leaves `reserved` in one statement (the first entry of a
-- request id in the batch is the one that counts; a later one, here or in another batch, answers
-- false), released units go back to their packages summed per package in the same statement, and
-- the answers kept for retries are written in one more when there are any.
CREATE OR REPLACE FUNCTION souk_settle_batch(
    request_ids TEXT[],
    states      TEXT[],
    nows        BIGINT[],
    callers     TEXT[],
    msg_ids     TEXT[],
    answers     TEXT[]
) RETURNS TABLE (entry INT, settled BOOLEAN)
LANGUAGE plpgsql
-- Joins by key only: a plan cached while the tables were small (a seq scan and a hash join) must
-- not stay in use as they grow.
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    n INT := COALESCE(array_length(request_ids, 1), 0);
    done BOOLEAN[] := array_fill(false, ARRAY[n]);
    i INT;
    hit RECORD;
BEGIN
    FOR hit IN
        WITH firsts AS (
            SELECT DISTINCT ON (s.request_id) s.request_id, s.state, s.now, s.entry
            FROM unnest(request_ids, states, nows) WITH ORDINALITY AS s(request_id, state, now, entry)
            ORDER BY s.request_id, s.entry
        ), changed AS (
            UPDATE charges c SET state = f.state, settled_at_ms = f.now
            FROM firsts f
            WHERE c.request_id = f.request_id AND c.state = 'reserved'
            RETURNING f.entry, f.state, c.package_id, c.units
        ), given_back AS (
            UPDATE packages p SET units_left = p.units_left + r.units
            FROM (SELECT ch.package_id, sum(ch.units) AS units FROM changed ch
                  WHERE ch.state = 'released' GROUP BY ch.package_id) r
            WHERE p.package_id = r.package_id
        )
        SELECT changed.entry FROM changed
    LOOP
        done[hit.entry] := true;
    END LOOP;

    IF EXISTS (SELECT 1 FROM unnest(callers) AS a(caller) WHERE a.caller IS NOT NULL) THEN
        UPDATE idempotency d SET answer = COALESCE(d.answer, a.answer)
        FROM unnest(callers, msg_ids, request_ids, answers) AS a(caller, msg_id, request_id, answer)
        WHERE a.caller IS NOT NULL
          AND d.caller_appid = a.caller AND d.client_msg_id = a.msg_id AND d.request_id = a.request_id;
    END IF;

    FOR i IN 1 .. n LOOP
        entry := i;
        settled := done[i];
        RETURN NEXT;
    END LOOP;
END;
$$;
