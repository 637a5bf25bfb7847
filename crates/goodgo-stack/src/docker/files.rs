//! Secrets and configs in a container, as docker compose puts them there: a host file is
//! bind-mounted read-only (so an edit shows at once); text (a config's `content`, a
//! variable's value) — and a host file whose `uid`, `gid` or `mode` must be honoured — is
//! written into the created container before it starts, as one tar archive through the
//! engine's archive API, with its owner, group and mode (default `0444`).
//!
//! Why its own module: the choice between mounting and copying, the archive, and what of
//! these files goes into the container's hash (the text's digest is in the model's hash;
//! a copied host file's content is read here, so an edit replaces the container) belong
//! together and apart from the container's life cycle.

use std::fmt::Write as _;
use std::path::Path;

use bollard::models::{Mount, MountType};
use bollard::query_parameters::UploadToContainerOptions;
use goodgo_compose::{FileRef, FileSource, Project, Service, config_hash};
use sha2::{Digest, Sha256};

use super::{DockerRuntime, engine};
use crate::{StackError, UpRequest};

/// Each secret and config of `service` with its path in the container and what it is.
fn all(service: &Service) -> impl Iterator<Item = (&FileRef, String, &'static str)> {
    let secrets = service
        .secrets
        .iter()
        .map(|r| (r, r.secret_path(), "secret"));
    let configs = service
        .configs
        .iter()
        .map(|r| (r, r.config_path(), "config"));
    secrets.chain(configs)
}

/// The read-only bind mounts of the host files that are not copied.
pub(super) fn mounts(service: &Service) -> Vec<Mount> {
    all(service)
        .filter(|(r, _, _)| !r.is_copied())
        .filter_map(|(r, path, _)| match &r.from {
            FileSource::File(file) => Some(Mount {
                target: Some(path),
                source: Some(file.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            }),
            FileSource::Text(_) => None,
        })
        .collect()
}

/// The container's hash: the model's [`config_hash`], and, when host files are copied in,
/// their contents too.
pub(super) fn hash(service: &Service) -> Result<String, StackError> {
    let model = config_hash(service);
    let mut copied = all(service)
        .filter(|(r, _, _)| r.is_copied())
        .filter_map(|(r, _, _)| match &r.from {
            FileSource::File(file) => Some(file.as_path()),
            FileSource::Text(_) => None,
        })
        .peekable();
    if copied.peek().is_none() {
        return Ok(model);
    }
    let mut digest = Sha256::new();
    digest.update(model.as_bytes());
    for file in copied {
        let content = read(file)?;
        digest.update(file.as_os_str().as_encoded_bytes());
        digest.update(Sha256::digest(&content));
    }
    Ok(hex(&digest.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn read(file: &Path) -> Result<Vec<u8>, StackError> {
    std::fs::read(file).map_err(StackError::io("reading", file))
}

/// Before anything is created: every host file a service of the request uses exists, and
/// no file is to be written into a read-only container.
pub(super) fn check(project: &Project, req: &UpRequest) -> Result<(), StackError> {
    for service in crate::services(project, &req.waves) {
        for (r, path, what) in all(service) {
            if let FileSource::File(file) = &r.from
                && !file.is_file()
            {
                return Err(StackError::Unsupported {
                    message: format!(
                        "the {what} `{}` of service `{}` is read from {}, which does not exist",
                        r.source,
                        service.name,
                        file.display()
                    ),
                    hint: Some(format!(
                        "create the file (it is mounted read-only at the {what}'s target)"
                    )),
                });
            }
            if r.is_copied() && service.host.read_only {
                return Err(StackError::Unsupported {
                    message: format!(
                        "service `{}` has `read_only: true`, so the {what} `{}` cannot be written to {path} in its container",
                        service.name, r.source
                    ),
                    hint: Some(format!(
                        "give the {what} a `file` source without `uid`, `gid` and `mode` (it is then mounted), or drop `read_only`"
                    )),
                });
            }
        }
    }
    Ok(())
}

/// The archive of the files copied into `service`'s container; `None` when there is none.
fn archive(service: &Service) -> Result<Option<Vec<u8>>, StackError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut any = false;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (r, path, _) in all(service).filter(|(r, _, _)| r.is_copied()) {
        let content = match &r.from {
            FileSource::Text(text) => text.as_bytes().to_vec(),
            FileSource::File(file) => read(file)?,
        };
        let id = |v: &Option<String>| v.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(r.copied_mode());
        header.set_uid(id(&r.uid));
        header.set_gid(id(&r.gid));
        header.set_mtime(now);
        builder
            .append_data(
                &mut header,
                path.trim_start_matches('/'),
                content.as_slice(),
            )
            .map_err(StackError::io("archiving", &path))?;
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let bytes = builder
        .into_inner()
        .map_err(StackError::io("archiving the files of", &service.name))?;
    Ok(Some(bytes))
}

impl DockerRuntime {
    /// Writes the copied secrets and configs into the created container `id` (before it
    /// starts), with their owner, group and mode.
    pub(super) async fn copy_files(&self, id: &str, service: &Service) -> Result<(), StackError> {
        let Some(tar) = archive(service)? else {
            return Ok(());
        };
        self.docker
            .upload_to_container(
                id,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_full(bytes::Bytes::from(tar)),
            )
            .await
            .map_err(engine(format!(
                "writing the secrets and configs of `{}` into its container",
                service.name
            )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Read as _;

    use super::*;

    fn service(text: &str, env: &[(&str, &str)]) -> Service {
        let env = |n: &str| {
            env.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let p = goodgo_compose::load_str(text, Path::new("/p"), Path::new("c.yaml"), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        p.services["app"].clone()
    }

    #[test]
    fn host_files_are_mounted_and_text_is_archived_with_owner_and_mode() {
        let s = service(
            "services:\n  app:\n    image: x\n    secrets: [pw, {source: tok, target: t, uid: '7', mode: 0400}]\n    configs: [plain, {source: inline, target: /etc/app.conf, gid: '9'}]\nsecrets:\n  pw: {file: ./pw.txt}\n  tok: {environment: TOKEN}\nconfigs:\n  plain: {file: ./plain.conf}\n  inline: {content: \"a=1\\n\"}\n",
            &[("TOKEN", "s3cret")],
        );
        let m = mounts(&s);
        let pairs: Vec<(String, String)> = m
            .iter()
            .map(|m| (m.source.clone().unwrap(), m.target.clone().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("/p/pw.txt".to_string(), "/run/secrets/pw".to_string()),
                ("/p/plain.conf".to_string(), "/plain".to_string()),
            ]
        );
        assert!(m.iter().all(|m| m.read_only == Some(true)));
        let tar = archive(&s).unwrap().unwrap();
        let mut entries = tar::Archive::new(tar.as_slice());
        let mut seen = Vec::new();
        for entry in entries.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            seen.push(format!(
                "{} {}:{} {:o} {text:?}",
                entry.path().unwrap().display(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mode().unwrap()
            ));
        }
        assert_eq!(
            seen,
            [
                "run/secrets/t 7:0 400 \"s3cret\"",
                "etc/app.conf 0:9 444 \"a=1\\n\"",
            ]
        );
        // Nothing to copy, no archive; the hash is the model's.
        let plain = service(
            "services:\n  app:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw: {file: ./pw.txt}\n",
            &[],
        );
        assert!(archive(&plain).unwrap().is_none());
        assert_eq!(hash(&plain).unwrap(), config_hash(&plain));
    }

    #[test]
    fn a_copied_host_file_s_content_is_in_the_hash() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("k.txt"), "one").unwrap();
        let text = "services:\n  app:\n    image: x\n    secrets: [{source: k, mode: 0400}]\nsecrets:\n  k: {file: ./k.txt}\n";
        let p = goodgo_compose::load_str(text, tmp.path(), Path::new("c.yaml"), &|_| None).unwrap();
        let s = &p.services["app"];
        let first = hash(s).unwrap();
        assert_ne!(first, config_hash(s));
        assert_eq!(hash(s).unwrap(), first);
        std::fs::write(tmp.path().join("k.txt"), "two").unwrap();
        assert_ne!(hash(s).unwrap(), first, "an edit replaces the container");
    }
}
