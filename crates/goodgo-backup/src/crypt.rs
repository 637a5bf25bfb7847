//! Encryption of backups with age: every stored file, after compression, is an age file
//! encrypted to the X25519 recipients (`age1…`) of goodgo.yaml's `backup.recipients` or
//! `--encrypt-to`, so `age -d -i KEY` opens it as well as goodgo does. Only public keys are
//! ever needed to make a backup; the identity (the secret key) is read from a file, and
//! only to verify by restoring or to restore.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use age::x25519;

use crate::BackupError;
use crate::manifest::{Encryption, Manifest};

/// The suffix of an encrypted file's stored name.
pub const SUFFIX: &str = ".age";
/// The manifest's name for this scheme.
pub const SCHEME: &str = "age";

/// The public keys a backup is encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<x25519::Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(ToString::to_string))
            .finish()
    }
}

impl Recipients {
    /// Parses `age1…` public keys; an empty list is `None` (no encryption).
    pub fn parse(texts: &[String]) -> Result<Option<Recipients>, BackupError> {
        let mut keys = Vec::new();
        for text in texts {
            let key = text.trim().parse::<x25519::Recipient>().map_err(|_| {
                BackupError::Input(format!(
                    "`{text}` is not an age X25519 recipient (a public key `age1…`, as `age-keygen -y KEY` prints)"
                ))
            })?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok((!keys.is_empty()).then_some(Recipients { keys }))
    }

    /// What the manifest records.
    pub fn describe(&self) -> Encryption {
        Encryption {
            scheme: SCHEME.into(),
            recipients: self.keys.iter().map(ToString::to_string).collect(),
        }
    }

    /// Wraps `out`: what is written to the result is encrypted into `out`; `finish` it.
    pub fn encrypt<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let encryptor =
            age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
                .map_err(io::Error::other)?;
        encryptor.wrap_output(out)
    }
}

/// The secret keys of an identity file (`AGE-SECRET-KEY-1…` lines, `#` comments), and the
/// public keys they open.
pub struct Identity {
    file: PathBuf,
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    public: Vec<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("file", &self.file)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads the identity file at `path` (as `age-keygen -o` writes it).
    pub fn read(path: &Path) -> Result<Identity, BackupError> {
        let bad = |message: String| {
            BackupError::Identity(format!(
                "{}: cannot read the identity: {message}",
                path.display()
            ))
        };
        let file = age::IdentityFile::from_file(path.to_string_lossy().into_owned())
            .map_err(|e| bad(e.to_string()))?;
        let mut public = Vec::new();
        file.write_recipients_file(&mut public)
            .map_err(|e| bad(e.to_string()))?;
        let public = String::from_utf8_lossy(&public)
            .lines()
            .map(str::to_string)
            .collect();
        let keys = file.into_identities().map_err(|e| bad(e.to_string()))?;
        Ok(Identity {
            file: path.to_path_buf(),
            keys,
            public,
        })
    }

    /// The public keys (`age1…`) of this identity's secret keys.
    pub fn public_keys(&self) -> &[String] {
        &self.public
    }

    /// Wraps `input`, an age file (`path` for messages), into a reader of its plaintext.
    /// The header is read and opened now: a key that does not open it is an error here.
    pub fn decrypt<R: Read>(
        &self,
        input: R,
        path: &Path,
    ) -> Result<age::stream::StreamReader<R>, BackupError> {
        let corrupt = |e: age::DecryptError| BackupError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("cannot be decrypted ({e}): its bytes differ from the backup's"),
        };
        let decryptor = age::Decryptor::new(input).map_err(corrupt)?;
        decryptor
            .decrypt(self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => BackupError::Identity(format!(
                    "{}: the identity in {} does not open it",
                    path.display(),
                    self.file.display()
                )),
                e => corrupt(e),
            })
    }
}

/// What reading backup `manifest` needs to decrypt: `None` when it is not encrypted; an
/// error when it is and `identity` is missing or holds none of its recipients' keys (so a
/// wrong key is refused before any file is read).
pub fn opener<'a>(
    manifest: &Manifest,
    identity: Option<&'a Identity>,
) -> Result<Option<&'a Identity>, BackupError> {
    let Some(encryption) = &manifest.encryption else {
        return Ok(None);
    };
    if encryption.scheme != SCHEME {
        return Err(BackupError::Identity(format!(
            "backup {} is encrypted with `{}`, which this goodgo does not read",
            manifest.id, encryption.scheme
        )));
    }
    let to = encryption.recipients.join(", ");
    let Some(identity) = identity else {
        return Err(BackupError::Identity(format!(
            "backup {} is encrypted (age, to {to}): give the identity file with --identity FILE or GOODGO_BACKUP_IDENTITY",
            manifest.id
        )));
    };
    if !identity
        .public
        .iter()
        .any(|p| encryption.recipients.contains(p))
    {
        return Err(BackupError::Identity(format!(
            "the identity in {} ({}) is not one of backup {}'s recipients ({to})",
            identity.file.display(),
            identity.public.join(", "),
            manifest.id
        )));
    }
    Ok(Some(identity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn key_file(dir: &Path, name: &str) -> (PathBuf, String) {
        let key = x25519::Identity::generate();
        let path = dir.join(name);
        let text = format!(
            "# created: now\n# public key: {}\n{}\n",
            key.to_public(),
            key.to_string().expose_secret()
        );
        std::fs::write(&path, text).expect("write key");
        (path, key.to_public().to_string())
    }

    #[test]
    fn a_file_encrypted_to_a_recipient_opens_with_its_identity_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (good, public) = key_file(dir.path(), "good.key");
        let (other, _) = key_file(dir.path(), "other.key");
        let recipients = Recipients::parse(&[public.clone(), public.clone()])
            .expect("parse")
            .expect("some");
        assert_eq!(
            recipients.describe().recipients,
            std::slice::from_ref(&public)
        );
        let mut writer = recipients.encrypt(Vec::new()).expect("encrypt");
        writer.write_all(b"COPY rows\n").expect("write");
        let sealed = writer.finish().expect("finish");
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"));

        let identity = Identity::read(&good).expect("identity");
        assert_eq!(identity.public_keys(), [public]);
        let mut plain = String::new();
        identity
            .decrypt(sealed.as_slice(), Path::new("f.age"))
            .expect("opens")
            .read_to_string(&mut plain)
            .expect("read");
        assert_eq!(plain, "COPY rows\n");

        let wrong = Identity::read(&other).expect("identity");
        let err = wrong
            .decrypt(sealed.as_slice(), Path::new("f.age"))
            .err()
            .expect("refused");
        assert!(matches!(err, BackupError::Identity(_)), "{err}");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let mut out = Vec::new();
        let read = identity
            .decrypt(flipped.as_slice(), Path::new("f.age"))
            .expect("header intact")
            .read_to_end(&mut out);
        assert!(read.is_err(), "a flipped byte fails authentication");
    }

    #[test]
    fn bad_keys_are_refused_by_name() {
        let err = Recipients::parse(&["age1nope".into()]).expect_err("bad");
        assert!(err.to_string().contains("`age1nope`"), "{err}");
        assert!(Recipients::parse(&[]).expect("empty").is_none());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("not-a-key");
        std::fs::write(&path, "hello\n").expect("write");
        let err = Identity::read(&path).expect_err("not a key");
        assert!(err.to_string().contains("not-a-key"), "{err}");
        assert!(
            !err.to_string().contains("hello"),
            "the file's text is not shown"
        );
    }
}
