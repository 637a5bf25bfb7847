//! A service's configuration hash, to label what runs and recreate only what changed.
//!
//! Why its own module: the hash must be stable across runs, machines and goodgo versions
//! that keep the model, so its input is spelled out here: the service serialized as JSON
//! (struct fields in declaration order, every map a `BTreeMap`, so nothing depends on hash
//! map order), with `pos` blanked — moving a service within its file changes nothing that runs.
//! The digest is SHA-256 from the `sha2` crate, written as lowercase hex (a test pins known
//! values: the hash is a container label and must not drift).

use std::fmt::Write as _;

use goodgo_yaml::Pos;
use sha2::{Digest, Sha256};

use crate::model::Service;

/// A stable hex SHA-256 of the service's resolved definition (everything but `pos`).
pub fn config_hash(service: &Service) -> String {
    // Serialized straight from the struct (not through `serde_json::Value`, whose key order
    // depends on serde_json's `preserve_order` feature, which another crate may turn on).
    let unplaced = Service {
        pos: Pos::default(),
        ..service.clone()
    };
    let text = serde_json::to_string(&unplaced)
        // Only a non-UTF-8 path can fail to serialize; hash the debug form instead.
        .unwrap_or_else(|_| format!("{unplaced:?}"));
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}
