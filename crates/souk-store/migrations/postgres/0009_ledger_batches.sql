-- Ledger writes of concurrent calls in one statement: the node queues them and runs a batch with
-- one of these functions, so a package row shared by many calls is locked once per batch and the
-- batch commits once, instead of once per call with the row held through each commit.
--
-- Each entry is what `reserve_in` does for one request (see the Rust side): claim the
-- `client_msg_id` if given (`duplicate` when already claimed), take the units from the best package
-- with a conditional update, record the charge. An entry that cannot be reserved here (no candidate
-- could pay, the key's holder vanished, the request id is taken) undoes its own writes and answers
-- `fallback`: the caller then runs the full transaction, which explains refusals. The conditional
-- updates are the same as the transaction's, so units are never over-taken.
CREATE FUNCTION souk_reserve_batch(
    request_ids TEXT[],
    payers      TEXT[],
    callers     TEXT[],
    services    TEXT[],
    apis        TEXT[],
    amounts     BIGINT[],
    nows        BIGINT[],
    msg_ids     TEXT[]
) RETURNS TABLE (entry INT, outcome TEXT, package_id TEXT, first_request_id TEXT, first_answer TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    i INT;
    candidate TEXT;
    taken TEXT;
BEGIN
    FOR i IN 1 .. COALESCE(array_length(request_ids, 1), 0) LOOP
        entry := i;
        package_id := NULL;
        first_request_id := NULL;
        first_answer := NULL;
        IF msg_ids[i] IS NOT NULL THEN
            INSERT INTO idempotency (caller_appid, client_msg_id, request_id, answer, created_at_ms)
            VALUES (callers[i], msg_ids[i], request_ids[i], NULL, nows[i])
            ON CONFLICT (caller_appid, client_msg_id) DO NOTHING;
            IF NOT FOUND THEN
                SELECT d.request_id, d.answer INTO first_request_id, first_answer
                FROM idempotency d WHERE d.caller_appid = callers[i] AND d.client_msg_id = msg_ids[i];
                outcome := CASE WHEN FOUND THEN 'duplicate' ELSE 'fallback' END;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        taken := NULL;
        FOR candidate IN
            SELECT p.package_id FROM packages p
            WHERE p.appid = payers[i] AND p.service_id = services[i]
              AND (p.expires_at_ms IS NULL OR p.expires_at_ms > nows[i]) AND p.units_left >= amounts[i]
            ORDER BY p.expires_at_ms ASC NULLS LAST, p.created_at_ms, p.package_id LIMIT 16
        LOOP
            UPDATE packages p SET units_left = p.units_left - amounts[i]
            WHERE p.package_id = candidate AND p.units_left >= amounts[i];
            IF FOUND THEN
                taken := candidate;
                EXIT;
            END IF;
        END LOOP;
        IF taken IS NOT NULL THEN
            INSERT INTO charges (request_id, package_id, payer_appid, caller_appid, service_id, api, units, state, created_at_ms, settled_at_ms)
            VALUES (request_ids[i], taken, payers[i], callers[i], services[i], apis[i], amounts[i], 'reserved', nows[i], NULL)
            ON CONFLICT (request_id) DO NOTHING;
            IF NOT FOUND THEN
                UPDATE packages p SET units_left = p.units_left + amounts[i] WHERE p.package_id = taken;
                taken := NULL;
            END IF;
        END IF;
        IF taken IS NULL THEN
            IF msg_ids[i] IS NOT NULL THEN
                DELETE FROM idempotency d
                WHERE d.caller_appid = callers[i] AND d.client_msg_id = msg_ids[i] AND d.request_id = request_ids[i];
            END IF;
            outcome := 'fallback';
        ELSE
            outcome := 'reserved';
            package_id := taken;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Settlements of concurrent calls in one statement, as `settle_one_statement` does for one (see
-- the Rust side): the charge leaves `reserved` once (a second settlement of the same request,
-- in the same batch or later, answers false), released units go back to their package, and the
-- answer is kept for retries. Answers, per entry, whether it settled.
CREATE FUNCTION souk_settle_batch(
    request_ids TEXT[],
    states      TEXT[],
    nows        BIGINT[],
    callers     TEXT[],
    msg_ids     TEXT[],
    answers     TEXT[]
) RETURNS TABLE (entry INT, settled BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    i INT;
    charged_package TEXT;
    charged_units BIGINT;
BEGIN
    FOR i IN 1 .. COALESCE(array_length(request_ids, 1), 0) LOOP
        entry := i;
        UPDATE charges c SET state = states[i], settled_at_ms = nows[i]
        WHERE c.request_id = request_ids[i] AND c.state = 'reserved'
        RETURNING c.package_id, c.units INTO charged_package, charged_units;
        settled := FOUND;
        IF settled AND states[i] = 'released' THEN
            UPDATE packages p SET units_left = p.units_left + charged_units WHERE p.package_id = charged_package;
        END IF;
        IF callers[i] IS NOT NULL THEN
            UPDATE idempotency d SET answer = COALESCE(d.answer, answers[i])
            WHERE d.caller_appid = callers[i] AND d.client_msg_id = msg_ids[i] AND d.request_id = request_ids[i];
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
