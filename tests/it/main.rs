//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod flow_support;
mod support;
mod webdriver;

mod audit_trail;
mod backup_live;
mod browser;
mod cli_brands;
mod cli_clients;
mod cli_maintenance;
mod cli_orgs;
mod cli_users;
mod db_faults;
mod db_files;
mod hardening;
mod healthz;
mod netfs;
mod oauth2_client;
mod resource_api;
mod restore;
mod seed_api;
mod signin_page;
mod token_endpoint;
mod vanished_db;
