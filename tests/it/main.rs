//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod support;

mod healthz;
mod cli_brands;
mod cli_clients;
mod cli_maintenance;
mod cli_orgs;
mod cli_users;
