//! The one integration test binary: every module drives the real `oauthd` executable
//! (spawned with a temporary database) through its CLI or over HTTP.

mod support;

mod browser;
mod healthz;
mod webdriver;
