//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod acme_support;
mod flow_support;
#[cfg(feature = "postgres")]
mod nginx;
mod pg_support;
mod relying_party;
mod support;
mod tls_support;
mod webdriver;

mod account_page;
mod acme;
mod acme_faults;
#[cfg(feature = "postgres")]
mod acme_instances;
mod architecture;
mod audit_retention;
mod audit_trail;
mod backup_live;
mod binary_layout;
mod browser;
mod browser_sessions;
mod cli_brands;
mod cli_clients;
mod cli_maintenance;
mod cli_ops;
mod cli_orgs;
mod cli_updates;
mod cli_users;
mod client_kinds;
mod client_log;
mod connection_limits;
mod consent;
mod cors;
mod db_faults;
mod db_files;
mod device_flow;
mod device_poll_memory;
mod email_identity;
mod hardening;
mod healthz;
mod login_admission;
mod login_timing;
mod logout;
mod metrics;
mod migrate_to;
mod netfs;
mod oauth2_client;
mod oidc;
mod oidc_agent;
mod oidc_apache;
mod oidc_authlib;
mod page_look;
mod pg_full_disk;
mod pg_read_only;
mod postgres_cluster;
mod races;
mod refresh_reuse;
mod resource_api;
mod restore;
mod revocation_everywhere;
#[cfg(feature = "postgres")]
mod scale_out;
mod seed_api;
mod sessions;
mod signin_csrf;
mod signin_page;
mod storage_upkeep;
mod strict_requests;
mod tls_files;
mod token_endpoint;
mod vanished_db;
