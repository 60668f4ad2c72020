//! Runs the conformance suite (`souk_store::conformance`) against both backends: one test per case
//! per backend. PostgreSQL tests need `SOUK_TEST_POSTGRES_URL` (they are skipped without it, except
//! under `CI`, where they fail).

use souk_store::conformance;

/// `case => sqlite_test_name, postgres_test_name;` for cases taking a store.
macro_rules! store_cases {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $sqlite() {
                conformance::with_sqlite(conformance::$case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $postgres() {
                conformance::with_postgres(conformance::$case).await;
            }
        )*
    };
}

/// `case => sqlite_test_name, postgres_test_name;` for cases taking a URL.
macro_rules! url_cases {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $sqlite() {
                conformance::with_sqlite_url(conformance::$case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $postgres() {
                conformance::with_postgres_url(conformance::$case).await;
            }
        )*
    };
}

store_cases! {
    ping_and_backend => sqlite_ping_and_backend, postgres_ping_and_backend;
    registry_apps => sqlite_registry_apps, postgres_registry_apps;
    registry_services => sqlite_registry_services, postgres_registry_services;
    registry_apis => sqlite_registry_apis, postgres_registry_apis;
    registry_packages => sqlite_registry_packages, postgres_registry_packages;
    tokens_issue_and_supersede => sqlite_tokens_issue_and_supersede, postgres_tokens_issue_and_supersede;
    tokens_expect_current => sqlite_tokens_expect_current, postgres_tokens_expect_current;
    tokens_rotation_race => sqlite_tokens_rotation_race, postgres_tokens_rotation_race;
    tokens_kill => sqlite_tokens_kill, postgres_tokens_kill;
    tokens_sweep => sqlite_tokens_sweep, postgres_tokens_sweep;
    force_refresh_limits => sqlite_force_refresh_limits, postgres_force_refresh_limits;
    force_refresh_race => sqlite_force_refresh_race, postgres_force_refresh_race;
    reserve_picks_soonest_expiring => sqlite_reserve_picks_soonest_expiring, postgres_reserve_picks_soonest_expiring;
    reserve_failure_reasons => sqlite_reserve_failure_reasons, postgres_reserve_failure_reasons;
    settle_commit_and_release => sqlite_settle_commit_and_release, postgres_settle_commit_and_release;
    client_msg_id_duplicate => sqlite_client_msg_id_duplicate, postgres_client_msg_id_duplicate;
    reserve_exactly_once => sqlite_reserve_exactly_once, postgres_reserve_exactly_once;
    mixed_burst_answers_each_operation => sqlite_mixed_burst_answers_each_operation, postgres_mixed_burst_answers_each_operation;
    client_msg_id_exactly_once => sqlite_client_msg_id_exactly_once, postgres_client_msg_id_exactly_once;
    settle_exactly_once_under_races => sqlite_settle_exactly_once_under_races, postgres_settle_exactly_once_under_races;
    ledger_flood_leaves_room_for_other_writes => sqlite_ledger_flood_leaves_room_for_other_writes, postgres_ledger_flood_leaves_room_for_other_writes;
    client_msg_id_failed_claims_do_not_stick => sqlite_client_msg_id_failed_claims_do_not_stick, postgres_client_msg_id_failed_claims_do_not_stick;
    reap_reservations => sqlite_reap_reservations, postgres_reap_reservations;
    cancel_reservation => sqlite_cancel_reservation, postgres_cancel_reservation;
    sweep_idempotency => sqlite_sweep_idempotency, postgres_sweep_idempotency;
    call_log => sqlite_call_log, postgres_call_log;
    call_log_big_batch_and_retry => sqlite_call_log_big_batch_and_retry, postgres_call_log_big_batch_and_retry;
    clients_users => sqlite_clients_users, postgres_clients_users;
    clients_unionids => sqlite_clients_unionids, postgres_clients_unionids;
    clients_sessions => sqlite_clients_sessions, postgres_clients_sessions;
    clients_grants => sqlite_clients_grants, postgres_clients_grants;
    jobs_submit_is_atomic_with_reservation => sqlite_jobs_submit_is_atomic_with_reservation, postgres_jobs_submit_is_atomic_with_reservation;
    jobs_claim_with_lease_and_takeover => sqlite_jobs_claim_with_lease_and_takeover, postgres_jobs_claim_with_lease_and_takeover;
    jobs_complete_exactly_once => sqlite_jobs_complete_exactly_once, postgres_jobs_complete_exactly_once;
    reap_skips_running_jobs => sqlite_reap_skips_running_jobs, postgres_reap_skips_running_jobs;
    jobs_sweep => sqlite_jobs_sweep, postgres_jobs_sweep;
    jobs_submit_survives_cancelled_callers => sqlite_jobs_submit_survives_cancelled_callers, postgres_jobs_submit_survives_cancelled_callers;
    jobs_submit_conflict_keeps_nothing => sqlite_jobs_submit_conflict_keeps_nothing, postgres_jobs_submit_conflict_keeps_nothing;
    jobs_and_sync_calls_interleave_exactly => sqlite_jobs_and_sync_calls_interleave_exactly, postgres_jobs_and_sync_calls_interleave_exactly;
    cdn_files_insert_get_delete => sqlite_cdn_files_insert_get_delete, postgres_cdn_files_insert_get_delete;
    cdn_files_list_expired => sqlite_cdn_files_list_expired, postgres_cdn_files_list_expired;
    media_insert_get_delete => sqlite_media_insert_get_delete, postgres_media_insert_get_delete;
    media_list_expired => sqlite_media_list_expired, postgres_media_list_expired;
    cloud_apps_insert_and_get => sqlite_cloud_apps_insert_and_get, postgres_cloud_apps_insert_and_get;
    cloud_apps_list => sqlite_cloud_apps_list, postgres_cloud_apps_list;
    cloud_apps_update => sqlite_cloud_apps_update, postgres_cloud_apps_update;
    codes_count_and_get => sqlite_codes_count_and_get, postgres_codes_count_and_get;
    codes_limit => sqlite_codes_limit, postgres_codes_limit;
    codes_limit_race => sqlite_codes_limit_race, postgres_codes_limit_race;
    messages_append_and_list => sqlite_messages_append_and_list, postgres_messages_append_and_list;
    messages_reply_rules => sqlite_messages_reply_rules, postgres_messages_reply_rules;
    messages_reply_limit_race => sqlite_messages_reply_limit_race, postgres_messages_reply_limit_race;
    messages_typing => sqlite_messages_typing, postgres_messages_typing;
    messages_push_outbox => sqlite_messages_push_outbox, postgres_messages_push_outbox;
    messages_numbering_race => sqlite_messages_numbering_race, postgres_messages_numbering_race;
    payments_record_and_find => sqlite_payments_record_and_find, postgres_payments_record_and_find;
}

url_cases! {
    reopen_keeps_data => sqlite_reopen_keeps_data, postgres_reopen_keeps_data;
    concurrent_open => sqlite_concurrent_open, postgres_concurrent_open;
    require_migrations => sqlite_require_migrations, postgres_require_migrations;
    reserve_exactly_once_across_nodes => sqlite_reserve_exactly_once_across_nodes, postgres_reserve_exactly_once_across_nodes;
}

#[test]
fn database_name_replaced_in_urls() {
    use conformance::with_database;
    assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
    assert_eq!(with_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
}
