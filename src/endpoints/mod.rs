//! The HTTP endpoints, one module each; `routes` picks one per request. Each parses its
//! request, asks the rule book (`oauth`) or the sign-in flow (`signin`) for a
//! decision, carries it out over the store, and answers; errors go back as `ApiError`.

pub mod account;
pub mod attempts;
pub mod authorize;
pub mod client_credentials;
pub mod consent;
pub mod cors;
pub mod device;
pub mod device_page;
pub mod discovery;
pub mod flow;
pub mod grant_jobs;
pub mod id_token;
pub mod issued;
pub mod login_api;
pub mod logout;
pub mod metadata;
pub mod page;
pub mod params;
pub mod resource;
pub mod token;
pub mod token_management;
pub mod token_request;
pub mod userinfo;
