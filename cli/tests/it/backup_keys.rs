//! Encrypted backups through the CLI: recipients from `--encrypt-to` or goodgo.yaml, the
//! identity from `--identity` or GOODGO_BACKUP_IDENTITY; without it or with a wrong one,
//! verify --restore and restore refuse as bad input (exit 2) before any database exists.

use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;

use super::backup::{backup, database_exists, pagila_db, run_leaving_no_database, table_digests};
use crate::{TestDb, context, run};

/// A new identity file, as `age-keygen -o` writes it; its path and public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = age::x25519::Identity::generate();
    let public = key.to_public().to_string();
    let path = dir.join(name);
    let text = format!(
        "# public key: {public}\n{}\n",
        key.to_string().expose_secret()
    );
    std::fs::write(&path, text).unwrap();
    (path, public)
}

#[test]
fn encrypted_backups_need_their_identity_to_restore() {
    let Some(db) = pagila_db("bk_age") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (ops_key, ops_public) = keygen(keys.path(), "ops.key");
    let (other_key, other_public) = keygen(keys.path(), "other.key");
    let ws = context().with_file(
        "goodgo.yaml",
        &format!("backup:\n  recipients: [{ops_public}]\n"),
    );
    let out = run(backup(&ws, &db).args(["create", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["encrypted"], true);
    let id = out.json()["id"].as_str().unwrap().to_string();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join(".goodgo/backups").join(&id).join("manifest.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["encryption"]["recipients"][0], ops_public.as_str());

    // The checksums need no key.
    let out = run(backup(&ws, &db).args(["verify", &id]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("encrypted"), "{}", out.stdout);

    // No identity, a wrong one: refused as bad input, nothing restored or created.
    let target = format!("{}_target", db.name);
    let server = db.server_url();
    let no_key =
        run_leaving_no_database(backup(&ws, &db).args(["verify", "--restore", &id]), server);
    no_key.assert_stderr(2, &["is encrypted", "--identity"]);
    let wrong = run_leaving_no_database(
        backup(&ws, &db)
            .args(["restore", &id, "--to-database", &target, "--identity"])
            .arg(&other_key),
        server,
    );
    wrong.assert_stderr(2, &["is not one of backup", &other_public]);
    let wrong_env = run_leaving_no_database(
        backup(&ws, &db)
            .env("GOODGO_BACKUP_IDENTITY", &other_key)
            .args(["verify", "--restore", &id]),
        server,
    );
    wrong_env.assert_stderr(2, &["other.key"]);
    let not_a_key = run_leaving_no_database(
        backup(&ws, &db)
            .args(["restore", &id, "--to-database", &target, "--identity"])
            .arg(ws.join("goodgo.yaml")),
        server,
    );
    not_a_key.assert_stderr(2, &["cannot read the identity"]);
    assert!(!database_exists(&db, &target));

    // The right identity, from the environment and from the flag.
    let out = run(backup(&ws, &db)
        .env("GOODGO_BACKUP_IDENTITY", &ops_key)
        .args(["verify", "--restore", "--json", &id]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let target = TestDb::create("bk_age_target").unwrap();
    let out = run(backup(&ws, &db)
        .args(["restore", &id, "--to-database", &target.name, "--identity"])
        .arg(&ops_key));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(table_digests(&db), table_digests(&target));

    // `--encrypt-to` names the recipients for one run (and a bad key is bad input).
    let out = run(backup(&ws, &db).args(["create", "--json", "--encrypt-to", &other_public]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let second = out.json()["id"].as_str().unwrap().to_string();
    let out = run(backup(&ws, &db)
        .args(["verify", &second, "--identity"])
        .arg(&other_key));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("decrypted"), "{}", out.stdout);
    run(backup(&ws, &db).args(["create", "--encrypt-to", "age1notakey"]))
        .assert_stderr(2, &["`age1notakey` is not an age X25519 recipient"]);
}
