//! The endpoints, one module per area.
pub mod admin;
pub mod auth;
pub mod billing;
pub mod docs;
pub mod health;
pub mod listings;
pub mod notifications;
pub mod photos;
pub mod search;
pub mod subscription;
pub mod webhooks;
