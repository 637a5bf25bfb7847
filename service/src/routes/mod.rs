//! The endpoints, one module per area.
pub mod auth;
pub mod docs;
pub mod health;
pub mod listings;
pub mod search;
