//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod flow_support;
mod relying_party;
mod support;
mod webdriver;

mod architecture;
mod audit_trail;
mod backup_live;
mod browser;
mod cli_brands;
mod cli_clients;
mod cli_maintenance;
mod cli_orgs;
mod cli_users;
mod connection_limits;
mod db_faults;
mod db_files;
mod email_identity;
mod hardening;
mod healthz;
mod login_admission;
mod login_timing;
mod netfs;
mod oauth2_client;
mod oidc;
mod oidc_apache;
mod oidc_authlib;
mod refresh_reuse;
mod resource_api;
mod restore;
mod seed_api;
mod signin_csrf;
mod signin_page;
mod storage_upkeep;
mod strict_requests;
mod token_endpoint;
mod vanished_db;
