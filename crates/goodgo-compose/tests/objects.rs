//! Secrets and configs: every source (`file`, `content`, `environment`), a service's use
//! with `target`, `uid`, `gid` and `mode`, resolved into the model, shown by the canonical
//! form, merged by target across files, in the hash (a secret's value only as a digest),
//! and each mistake located.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::path::Path;

use goodgo_compose::*;

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Project, ComposeError> {
    let env = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    load_str(text, Path::new("/project"), Path::new("c.yaml"), &env)
}

fn err(text: &str, vars: &[(&str, &str)]) -> String {
    match load_env(text, vars) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const EVERY_SOURCE: &str = r#"services:
  app:
    image: x
    configs:
      - plain
      - source: inline
        target: /etc/app/app.conf
        uid: "1000"
        gid: "1001"
        mode: 0440
      - source: fromenv
        target: relative.conf
    secrets:
      - pw
      - source: token
        target: api-token
        mode: 0400
configs:
  plain:
    file: ./conf/plain.conf
  inline:
    content: |
      port=${PORT:-8080}
      literal=$$HOME
  fromenv:
    environment: APP_CONF
secrets:
  pw:
    file: ./pw.txt
  token:
    environment: API_TOKEN
"#;

#[test]
fn every_source_resolves_to_the_file_the_container_gets() {
    let p = load_env(
        EVERY_SOURCE,
        &[("APP_CONF", "from the environment"), ("API_TOKEN", "t0k3n")],
    )
    .unwrap();
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    let app = &p.services["app"];
    let configs: Vec<(String, FileSource, Option<u32>)> = app
        .configs
        .iter()
        .map(|r| (r.config_path(), r.from.clone(), r.mode))
        .collect();
    assert_eq!(
        configs,
        [
            (
                "/plain".to_string(),
                FileSource::File("/project/conf/plain.conf".into()),
                None
            ),
            (
                "/etc/app/app.conf".to_string(),
                FileSource::Text("port=8080\nliteral=$HOME\n".into()),
                Some(0o440)
            ),
            (
                "/relative.conf".to_string(),
                FileSource::Text("from the environment".into()),
                None
            ),
        ]
    );
    let inline = &app.configs[1];
    assert_eq!(
        (inline.uid.as_deref(), inline.gid.as_deref()),
        (Some("1000"), Some("1001"))
    );
    assert!(inline.is_copied() && !app.configs[0].is_copied());
    assert_eq!(inline.copied_mode(), 0o440);
    assert_eq!(app.configs[2].copied_mode(), 0o444, "Compose's default");
    let secrets: Vec<(String, FileSource)> = app
        .secrets
        .iter()
        .map(|r| (r.secret_path(), r.from.clone()))
        .collect();
    assert_eq!(
        secrets,
        [
            (
                "/run/secrets/pw".to_string(),
                FileSource::File("/project/pw.txt".into())
            ),
            (
                "/run/secrets/api-token".to_string(),
                FileSource::Text("t0k3n".into())
            ),
        ]
    );
    assert_eq!(
        p.configs["fromenv"].environment.as_deref(),
        Some("APP_CONF")
    );
}

#[test]
fn the_canonical_form_shows_them_as_compose_does() {
    let p = load_env(EVERY_SOURCE, &[("APP_CONF", "x"), ("API_TOKEN", "t0k3n")]).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&canonical::config(&p, "proj").to_json()).unwrap();
    assert_eq!(
        v["configs"],
        serde_json::json!({
            "fromenv": {"name": "proj_fromenv", "environment": "APP_CONF"},
            "inline": {"name": "proj_inline", "content": "port=8080\nliteral=$$HOME\n"},
            "plain": {"name": "proj_plain", "file": "/project/conf/plain.conf"},
        })
    );
    assert_eq!(
        v["secrets"]["token"],
        serde_json::json!({"name": "proj_token", "environment": "API_TOKEN"})
    );
    assert_eq!(
        v["services"]["app"]["configs"][1],
        serde_json::json!({"source": "inline", "target": "/etc/app/app.conf", "uid": "1000", "gid": "1001", "mode": 288})
    );
    assert_eq!(
        v["services"]["app"]["secrets"],
        serde_json::json!([{"source": "pw"}, {"source": "token", "target": "api-token", "mode": 256}])
    );
    let yaml = canonical::config(&p, "proj").to_yaml();
    assert!(
        !yaml.contains("t0k3n"),
        "a secret's value is never shown: {yaml}"
    );
}

#[test]
fn the_hash_follows_the_content_but_never_holds_a_secret() {
    let hash = |vars: &[(&str, &str)], text: &str| {
        config_hash(&load_env(text, vars).unwrap().services["app"])
    };
    let vars = [("APP_CONF", "x"), ("API_TOKEN", "t0k3n")];
    let base = hash(&vars, EVERY_SOURCE);
    assert_eq!(base, hash(&vars, EVERY_SOURCE));
    assert_ne!(
        base,
        hash(&[("APP_CONF", "x"), ("API_TOKEN", "other")], EVERY_SOURCE),
        "a new secret value replaces the container"
    );
    assert_ne!(
        base,
        hash(&vars, &EVERY_SOURCE.replace("literal=", "literally=")),
        "new content too"
    );
    assert_ne!(
        base,
        hash(&vars, &EVERY_SOURCE.replace("mode: 0400", "mode: 0440"))
    );
    assert_ne!(
        base,
        hash(&vars, &EVERY_SOURCE.replace("./pw.txt", "./other.txt")),
        "another host file is another mount"
    );
    let p = load_env(EVERY_SOURCE, &vars).unwrap();
    let json = serde_json::to_string(&p.services["app"]).unwrap();
    assert!(!json.contains("t0k3n"), "{json}");
    assert!(json.contains("text_sha256"), "{json}");
    // A service without configs hashes as before they were read.
    let plain = "services:\n  web:\n    image: nginx:1.27\n";
    assert_eq!(
        config_hash(&load_env(plain, &[]).unwrap().services["web"]),
        "bf825883273e0cbe554858296fe8f9de5964aab5eeafb8d45aa194aa59263617"
    );
}

#[test]
fn each_mistake_is_located() {
    let service = "services:\n  app:\n    image: x\n";
    for (text, vars, expect) in [
        (
            format!(
                "{service}    secrets: [token]\nsecrets:\n  token:\n    environment: API_TOKEN\n"
            ),
            &[][..],
            "c.yaml:7:18: secrets.token.environment: the variable `API_TOKEN` is not set, and services.app.secrets[0] uses this secret (the service would lack /run/secrets/token); set it, or give the secret another source",
        ),
        (
            format!(
                "{service}    configs: [c]\nconfigs:\n  c:\n    file: ./c.conf\n    content: inline\n"
            ),
            &[],
            "c.yaml:8:5: configs.c: `file` and `content` cannot both be set: a config has one source",
        ),
        (
            format!("{service}configs:\n  c:\n    name: only-a-name\n"),
            &[],
            "c.yaml:5:3: configs.c: a config needs `file`, `content`, `environment` or `external: true`",
        ),
        (
            format!("{service}secrets:\n  s:\n    content: text\n"),
            &[],
            "c.yaml:6:5: secrets.s: unknown key `content`",
        ),
        (
            format!("{service}    configs: [confg]\nconfigs:\n  config: {{content: x}}\n"),
            &[],
            "c.yaml:4:15: services.app.configs[0]: the config `confg` is not declared under the top-level `configs` (did you mean `config`?)",
        ),
        (
            format!(
                "{service}    configs: [{{source: c, uid: root}}]\nconfigs:\n  c: {{content: x}}\n"
            ),
            &[],
            "c.yaml:4:32: services.app.configs[0].uid: expected a numeric id like `1000`, found `root`",
        ),
        (
            format!(
                "{service}    secrets: [{{source: s, mode: 0999}}]\nsecrets:\n  s: {{file: ./s}}\n"
            ),
            &[],
            "c.yaml:4:33: services.app.secrets[0].mode: expected a file mode like `0440` (octal) or `288`, found `0999`",
        ),
        (
            format!("{service}    configs: [c]\nconfigs:\n  c:\n    external: true\n"),
            &[],
            "c.yaml:4:15: services.app.configs[0]: the config `c` uses `configs.c.external`, which goodgo does not support",
        ),
    ] {
        let e = err(&text, vars);
        assert!(
            e.starts_with(expect),
            "\n  expected: {expect}\n  got:      {e}"
        );
    }
    // Set but empty is a value: an empty file.
    let p = load_env(
        &format!("{service}    secrets: [token]\nsecrets:\n  token:\n    environment: API_TOKEN\n"),
        &[("API_TOKEN", "")],
    )
    .unwrap();
    assert_eq!(
        p.services["app"].secrets[0].from,
        FileSource::Text(String::new())
    );
}

#[test]
fn uses_merge_by_target_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    image: x\n    configs: [a, {source: b, target: /etc/b}]\nconfigs:\n  a: {content: one}\n  b: {content: two}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("override.yaml"),
        "services:\n  app:\n    configs: [{source: a, mode: 0400}, {source: c, target: /etc/b}]\nconfigs:\n  c: {file: ./c.conf}\n",
    )
    .unwrap();
    let (a, b) = (dir.join("compose.yaml"), dir.join("override.yaml"));
    let p = load_files(
        &[
            (a.as_path(), Path::new("compose.yaml")),
            (b.as_path(), Path::new("override.yaml")),
        ],
        &|_| None,
    )
    .unwrap();
    let uses: Vec<(String, String, Option<u32>)> = p.services["app"]
        .configs
        .iter()
        .map(|r| (r.source.clone(), r.config_path(), r.mode))
        .collect();
    assert_eq!(
        uses,
        [
            ("a".to_string(), "/a".to_string(), Some(0o400)),
            ("c".to_string(), "/etc/b".to_string(), None),
        ]
    );
    assert_eq!(
        p.services["app"].configs[1].from,
        FileSource::File(dir.join("c.conf"))
    );
}

#[test]
fn selinux_relabeling_is_read_for_bind_mounts() {
    let p = load_env(
        "services:\n  app:\n    image: x\n    volumes:\n      - ./src:/src:z\n      - type: bind\n        source: ./data\n        target: /data\n        bind: {selinux: Z}\n",
        &[],
    )
    .unwrap();
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    let labels: Vec<Option<&str>> = p.services["app"]
        .volumes
        .iter()
        .map(|m| m.options.selinux.as_deref())
        .collect();
    assert_eq!(labels, [Some("z"), Some("Z")]);
    let v: serde_json::Value = serde_json::from_str(&canonical::config(&p, "p").to_json()).unwrap();
    assert_eq!(v["services"]["app"]["volumes"][1]["bind"]["selinux"], "Z");
    for (text, expect) in [
        (
            "services:\n  app:\n    image: x\n    volumes: [data:/data:z]\nvolumes:\n  data:\n",
            "c.yaml:4:15: services.app.volumes[0]: the `z` option applies to bind mounts only",
        ),
        (
            "services:\n  app:\n    image: x\n    volumes:\n      - type: bind\n        source: ./d\n        target: /d\n        bind: {selinux: q}\n",
            "c.yaml:8:25: services.app.volumes[0].bind.selinux: unknown SELinux relabeling `q`; expected `z` (shared) or `Z` (private)",
        ),
    ] {
        assert_eq!(err(text, &[]), expect);
    }
}
