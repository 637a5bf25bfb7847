//! Encrypted backups (age, X25519) against a real PostgreSQL with the real pg_dump and
//! pg_restore: every file is an age file, the manifest records the recipients, the right
//! identity restores the same rows, and no identity or a wrong one is refused before any
//! file is decrypted or any database touched.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use common::{block_on, database, quiet, restore_matches, tools};
use goodgo_backup::crypt::{Identity, Recipients};
use goodgo_backup::store::{Location, Store};
use goodgo_backup::{BackupError, check, create};
use goodgo_db::admin::Target;
use goodgo_diag::{Class, Diagnostic};

/// A new X25519 identity written as `age-keygen -o` writes it; its path and public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = age::x25519::Identity::generate();
    let public = key.to_public().to_string();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "# created: 2026-01-01T00:00:00Z\n# public key: {public}\n{}\n",
            key.to_string().expose_secret()
        ),
    )
    .unwrap();
    (path, public)
}

fn assert_identity_error(err: &BackupError, contains: &str) {
    assert!(matches!(err, BackupError::Identity(_)), "{err:?}");
    assert_eq!(err.class(), Some(Class::Input), "exit 2: {err}");
    assert!(err.to_string().contains(contains), "{err}");
}

#[test]
fn an_encrypted_backup_restores_with_its_identity_and_refuses_any_other() {
    let Some(db) = database("bk_encrypted", 20_000) else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (ops_key, ops_public) = keygen(keys.path(), "ops.key");
    let (_, vault_public) = keygen(keys.path(), "vault.key");
    let (stranger_key, _) = keygen(keys.path(), "stranger.key");
    let dest = tempfile::tempdir().unwrap();
    let store = Store::open(Location::Local(dest.path().to_path_buf())).unwrap();
    let source = Target::parse(&db.url).unwrap();
    let tools = tools();
    let options = create::Options {
        jobs: 2,
        git_commit: None,
        recipients: Recipients::parse(&[ops_public.clone(), vault_public.clone()]).unwrap(),
    };
    let created = block_on(create::create(&source, &tools, &store, &options, &quiet)).unwrap();
    let m = &created.manifest;
    let id = m.id.clone();
    let dir = dest.path().join(&id);

    // The manifest says how and to whom; every file is an age file, data compressed first.
    assert_eq!(m.format_version, 5);
    let encryption = m.encryption.as_ref().unwrap();
    assert_eq!(encryption.scheme, "age");
    assert_eq!(encryption.recipients, [ops_public, vault_public]);
    assert!(
        m.files.iter().any(|f| f.path == "dump/toc.dat.age"),
        "{m:?}"
    );
    for file in &m.files {
        assert!(file.path.ends_with(".age"), "{file:?}");
        let bytes = std::fs::read(dir.join(&file.path)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{file:?}");
    }
    assert!(m.files.iter().any(|f| f.path.ends_with(".dat.zst.age")));
    let manifest_text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(
        manifest_text.contains("\"format_version\": 5"),
        "{manifest_text}"
    );
    // Nothing is left in the clear beside the encrypted files (the table of contents is
    // read after the dump, then removed).
    let plain: Vec<_> = std::fs::read_dir(dir.join("dump"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".age"))
        .collect();
    assert!(plain.is_empty(), "{plain:?}");

    // Checksums need no key; with the right one, every file is also opened.
    block_on(check::verify_files(&store, &id, None, 2, &quiet)).unwrap();
    let ops = Identity::read(&ops_key).unwrap();
    block_on(check::verify_files(&store, &id, Some(&ops), 2, &quiet)).unwrap();

    // No identity, or one that is not a recipient: refused as bad input, nothing written,
    // no database touched.
    let stranger = Identity::read(&stranger_key).unwrap();
    let err = block_on(check::verify_files(&store, &id, Some(&stranger), 2, &quiet)).unwrap_err();
    assert_identity_error(&err, "stranger.key");
    let scratch = tempfile::tempdir().unwrap();
    let err = common::materialize(&store, &id, None, scratch.path()).unwrap_err();
    assert_identity_error(&err, "--identity");
    let err = common::materialize(&store, &id, Some(&stranger), scratch.path()).unwrap_err();
    assert_identity_error(&err, "is not one of backup");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    // The scratch databases this process makes are named after its id.
    let databases = format!(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'goodgo_verify_{}_%'",
        std::process::id()
    );
    let err = block_on(check::verify_by_restore(
        &store,
        &id,
        Some(&stranger),
        &source,
        &tools,
        2,
        None,
        &quiet,
    ))
    .unwrap_err();
    assert_identity_error(&err, "is not one of backup");
    assert_eq!(goodgo_testkit::query(db.server_url(), &databases), "0");
    assert!(block_on(store.verified(&id)).is_none());

    // The right identity restores the same rows; verification is recorded.
    let (_, verified) = block_on(check::verify_by_restore(
        &store,
        &id,
        Some(&ops),
        &source,
        &tools,
        2,
        None,
        &quiet,
    ))
    .unwrap();
    assert!(verified.restored);
    restore_matches(&store, &id, Some(&ops), &db);

    // One flipped byte in an encrypted file: named by its checksum, even with the key.
    let big = common::largest(&created.manifest);
    let path = dir.join(&big.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let err = block_on(check::verify_files(&store, &id, Some(&ops), 2, &quiet)).unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: SHA-256 ", path.display())),
        "{err}"
    );
}
