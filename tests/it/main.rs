//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod support;

mod healthz;
mod flow_support;
mod seed_api;
mod token_endpoint;
mod resource_api;
mod signin_page;
mod oauth2_client;
mod hardening;
