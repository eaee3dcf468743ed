//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod flow_support;
mod support;
mod webdriver;

mod account_page;
mod architecture;
mod audit_retention;
mod audit_trail;
mod backup_live;
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
mod connection_limits;
mod cors;
mod db_faults;
mod db_files;
mod device_flow;
mod email_identity;
mod hardening;
mod healthz;
mod login_admission;
mod login_timing;
mod logout;
mod metrics;
mod netfs;
mod oauth2_client;
mod refresh_reuse;
mod resource_api;
mod restore;
mod seed_api;
mod sessions;
mod signin_csrf;
mod signin_page;
mod storage_upkeep;
mod strict_requests;
mod token_endpoint;
mod vanished_db;
