//! Connections, databases and the arguments libpq's own tools (psql, pg_dump) need.
//!
//! Databases are created and dropped here, with every name quoted, so that tests, xtask
//! and commands never hand a name to `psql`; throwaway ones are in [`crate::scratch`].

use std::ffi::{OsStr, OsString};
use std::process::Command;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::DbError;
pub use crate::scratch::{Scratch, TestDatabase, unique_name};

/// A parsed database URL, with a form safe to print.
#[derive(Clone)]
pub struct Target {
    pub config: Config,
    pub url: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, DbError> {
        let mut config: Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| DbError::BadUrl {
                    url: redact(url),
                    source: e.into(),
                })?;
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("goodgo");
        Ok(Target {
            config,
            url: url.to_string(),
        })
    }

    pub fn dbname(&self) -> String {
        self.config
            .get_dbname()
            .map(str::to_string)
            .or_else(|| self.config.get_user().map(str::to_string))
            .unwrap_or_else(|| "postgres".into())
    }

    /// The same server, another database.
    pub fn with_dbname(&self, name: &str) -> Target {
        let mut config = self.config.clone();
        config.dbname(name);
        let url = replace_dbname(&self.url, name);
        Target { config, url }
    }

    /// This server's target to create or drop database `name` from: itself, or its
    /// `postgres` database when it is `name` (a session cannot drop its own database).
    pub fn maintenance(&self, name: &str) -> Target {
        if self.dbname() == name {
            self.with_dbname("postgres")
        } else {
            self.clone()
        }
    }

    /// The URL with its password hidden.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    pub async fn connect(&self) -> Result<Client, DbError> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|e| DbError::Connect {
                    url: self.redacted(),
                    source: e.into(),
                })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// `program` (psql, pg_dump, pg_restore…) set to reach this database: its
    /// [`libpq_args`](Self::libpq_args) first, the password in `PGPASSWORD`.
    pub fn libpq_command(&self, program: impl AsRef<OsStr>) -> Command {
        let (args, password) = self.libpq_args();
        let mut command = Command::new(program);
        command.args(args);
        if let Some(p) = password {
            command.env("PGPASSWORD", p);
        }
        command
    }

    /// `-h HOST -p PORT -U USER -d DB` for psql, pg_dump and friends, and the password to
    /// hand over in `PGPASSWORD` (never on the command line).
    pub fn libpq_args(&self) -> (Vec<OsString>, Option<String>) {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(host) = self.config.get_hosts().first() {
            args.push("-h".into());
            match host {
                Host::Tcp(h) => args.push(h.into()),
                Host::Unix(p) => args.push(p.into()),
            }
        }
        if let Some(port) = self.config.get_ports().first() {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        if let Some(user) = self.config.get_user() {
            args.push("-U".into());
            args.push(user.into());
        }
        // libpq reads a `-d` value with `=` or a URI prefix as a connection string: such a
        // name goes in one, quoted.
        let dbname = self.dbname();
        args.push("-d".into());
        if dbname.contains('=')
            || dbname.starts_with("postgres://")
            || dbname.starts_with("postgresql://")
        {
            args.push(format!("dbname={}", conninfo_value(&dbname)).into());
        } else {
            args.push(dbname.into());
        }
        let password = self
            .config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        (args, password)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{tail}"),
        None => url.to_string(),
    }
}

/// `url` naming database `name` instead: the path of a `postgres://` URL (percent-encoded),
/// or a `dbname='…'` appended to a `key=value` connection string (the last one counts).
fn replace_dbname(url: &str, name: &str) -> String {
    if !url.contains("://") {
        return format!("{url} dbname={}", conninfo_value(name));
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[after_scheme..].find('/').map(|i| i + after_scheme);
    let name = path_segment(name);
    let mut out = match path_start {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => format!("{base}/{name}"),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `name` as one URL path segment: every byte but RFC 3986's unreserved ones
/// percent-encoded (tokio-postgres and libpq decode it).
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A libpq `key=value` value: single-quoted, with `\` and `'` escaped by a backslash.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Quotes an identifier for SQL: in double quotes, inner double quotes doubled, so any
/// name (capitals, spaces, hyphens, quotes) means itself.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates database `name` on `server`'s server, as a copy of `template` (the server's
/// default, `template1`, when `None`). Connects to `server`'s own database, which must not
/// be `name` (see [`Target::maintenance`]).
pub async fn create_database(
    server: &Target,
    name: &str,
    template: Option<&str>,
) -> Result<(), DbError> {
    let client = server.connect().await?;
    let sql = match template {
        Some(t) => format!("CREATE DATABASE {} TEMPLATE {}", ident(name), ident(t)),
        None => format!("CREATE DATABASE {}", ident(name)),
    };
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| DbError::pg(format!("creating database {name}"), e))
}

/// How a database stores and sorts text, as `pg_database` has it: what a restore gives
/// the database it creates, so that the restored text is byte for byte the dumped one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSettings {
    /// The server-side encoding (`pg_encoding_to_char(encoding)`): `UTF8`, `LATIN1`…
    pub encoding: String,
    /// `datcollate` and `datctype`: the libc locale (`C`, `en_US.UTF-8`…).
    pub lc_collate: String,
    pub lc_ctype: String,
    /// The collation provider when it is not libc (`datlocprovider`): `icu` (PostgreSQL
    /// 15 and later) or `builtin` (17 and later). Absent for libc, and before 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// That provider's locale (`daticulocale`, from 17 `datlocale`): `en-US`, `C.UTF-8`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_locale: Option<String>,
}

impl TextSettings {
    /// The locale in words: `ICU locale en-US`, `locale en_US.UTF-8`, or both libc
    /// settings when they differ.
    pub fn describe_locale(&self) -> String {
        match (&self.provider, &self.provider_locale) {
            (Some(provider), Some(locale)) if provider == "icu" => format!("ICU locale {locale}"),
            (Some(provider), Some(locale)) => format!("{provider} locale {locale}"),
            _ if self.lc_collate == self.lc_ctype => format!("locale {}", self.lc_collate),
            _ => format!("LC_COLLATE {}, LC_CTYPE {}", self.lc_collate, self.lc_ctype),
        }
    }
}

/// The encoding and locale of the database `client` is connected to.
pub async fn text_settings(
    client: &impl tokio_postgres::GenericClient,
) -> Result<TextSettings, DbError> {
    let row = client
        .query_one(
            // The provider's columns are read by name from the row as JSON: they are not
            // there before PostgreSQL 15, and `daticulocale` is `datlocale` from 17.
            "SELECT pg_catalog.pg_encoding_to_char(d.encoding)::text, d.datcollate::text, d.datctype::text,
                    j->>'datlocprovider', coalesce(j->>'datlocale', j->>'daticulocale')
               FROM pg_catalog.pg_database d, pg_catalog.to_jsonb(d) j
              WHERE d.datname = pg_catalog.current_database()",
            &[],
        )
        .await
        .map_err(|e| DbError::pg("asking the database's encoding and locale", e))?;
    let provider = match row.get::<_, Option<String>>(3).as_deref() {
        None | Some("c") => None,
        Some("i") => Some("icu".to_string()),
        Some("b") => Some("builtin".to_string()),
        Some(other) => Some(other.to_string()),
    };
    Ok(TextSettings {
        encoding: row.get(0),
        lc_collate: row.get(1),
        lc_ctype: row.get(2),
        provider_locale: provider.as_ref().and(row.get(4)),
        provider,
    })
}

/// A string literal for SQL: in single quotes, inner single quotes doubled.
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Creates database `name` on `server`'s server from `template0` with `like`'s encoding
/// and locale (and collation provider). A server that cannot (no such locale: another
/// machine's, another libc; no ICU, or a version before the provider) gets the database
/// with the same encoding and what it can: the provider with the libc locale C, the libc
/// locale without the provider, else the `C` locale. What was stored is then restored byte
/// for byte, only sorted otherwise. A database without a provider is asked for with libc
/// (from PostgreSQL 15, template0 may be ICU's).
/// Returns `None` when the locale was kept, else what the database got instead.
pub async fn create_database_like(
    server: &Target,
    name: &str,
    like: &TextSettings,
) -> Result<Option<String>, DbError> {
    let client = server.connect().await?;
    // From 15 on, template0 may itself use ICU (`initdb --locale-provider=icu`): a libc
    // database is asked for by name.
    let version: i32 = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )
        .await
        .map_err(|e| DbError::pg("asking the server's version", e))?
        .get(0);
    let create = |collate: &str, ctype: &str, keep_provider: bool| {
        let mut sql = format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            ident(name),
            literal(&like.encoding),
            literal(collate),
            literal(ctype)
        );
        match (&like.provider, &like.provider_locale) {
            (Some(kind), Some(locale)) if keep_provider => {
                let option = if kind == "builtin" {
                    "BUILTIN_LOCALE"
                } else {
                    "ICU_LOCALE"
                };
                sql.push_str(&format!(
                    " LOCALE_PROVIDER {} {option} {}",
                    literal(kind),
                    literal(locale)
                ));
            }
            _ if version >= 150000 => sql.push_str(" LOCALE_PROVIDER 'libc'"),
            _ => {}
        }
        sql
    };
    let first = match client
        .batch_execute(&create(&like.lc_collate, &like.lc_ctype, true))
        .await
    {
        Ok(()) => return Ok(None),
        Err(e) => e,
    };
    let c_libc = like.lc_collate == "C" && like.lc_ctype == "C";
    let mut fallbacks = Vec::new();
    if like.provider.is_some() {
        // ICU (or builtin) sorts; the libc locale is then only the server's default for
        // what ICU does not do, and C serves.
        if !c_libc {
            fallbacks.push((
                create("C", "C", true),
                format!("{} with the libc locale C", like.describe_locale()),
            ));
        }
        let libc = TextSettings {
            provider: None,
            provider_locale: None,
            ..like.clone()
        };
        fallbacks.push((
            create(&like.lc_collate, &like.lc_ctype, false),
            format!("the libc {}", libc.describe_locale()),
        ));
    }
    if !c_libc {
        fallbacks.push((create("C", "C", false), "the C locale".to_string()));
    }
    for (sql, instead) in fallbacks {
        if client.batch_execute(&sql).await.is_ok() {
            return Ok(Some(instead));
        }
    }
    // The first failure says more (the locale is only one of its possible causes).
    Err(DbError::pg(format!("creating database {name}"), first))
}

/// Drops database `name`, ending its sessions first (`WITH (FORCE)`); nothing when it does
/// not exist (`IF EXISTS`). Connects to `server`'s own database, which must not be `name`.
pub async fn drop_database(server: &Target, name: &str) -> Result<(), DbError> {
    let client = server.connect().await?;
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(name)
        ))
        .await
        .map_err(|e| DbError::pg(format!("dropping database {name}"), e))
}

/// Sets (or, with `None`, removes) the comment on database `name`. Connects to `server`'s
/// own database.
pub async fn set_comment(
    server: &Target,
    name: &str,
    comment: Option<&str>,
) -> Result<(), DbError> {
    let client = server.connect().await?;
    client
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            ident(name),
            comment.map_or_else(|| "NULL".to_string(), literal)
        ))
        .await
        .map_err(|e| DbError::pg(format!("setting the comment on database {name}"), e))
}

/// Renames database `from` to `to` (which must not exist). Connects to `server`'s own
/// database, which must be neither.
pub async fn rename_database(server: &Target, from: &str, to: &str) -> Result<(), DbError> {
    let client = server.connect().await?;
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            ident(from),
            ident(to)
        ))
        .await
        .map_err(|e| DbError::pg(format!("renaming database {from} to {to}"), e))
}

/// Whether database `name` exists on `server`'s server.
pub async fn database_exists(server: &Target, name: &str) -> Result<bool, DbError> {
    let client = server.connect().await?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await
        .map_err(|e| DbError::pg(format!("looking up database {name}"), e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_and_dbname_swap() {
        assert_eq!(
            redact("postgres://u:p%40ss@h:5/db?x=1"),
            "postgres://u:***@h:5/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            replace_dbname("postgres://u@h:5/db?sslmode=disable", "other"),
            "postgres://u@h:5/other?sslmode=disable"
        );
        assert_eq!(
            replace_dbname("postgres://u@h:5", "other"),
            "postgres://u@h:5/other"
        );
        assert_eq!(
            replace_dbname("postgres://u@h:5/db", "My db-1/\"x\"%"),
            "postgres://u@h:5/My%20db-1%2F%22x%22%25"
        );
        assert_eq!(
            replace_dbname("host=/tmp dbname=a", "it's \\ b"),
            "host=/tmp dbname=a dbname='it\\'s \\\\ b'"
        );
    }

    #[test]
    fn any_name_survives_the_url_and_the_libpq_arguments() {
        for url in [
            "postgres://u:pw@h:5/db?sslmode=disable",
            "host=h port=5 user=u dbname=db",
        ] {
            let target = Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            for name in ["My db-1/\"x\"%", "it's \\ b", "a=b", "postgres://x"] {
                let other = target.with_dbname(name);
                assert_eq!(other.dbname(), name);
                let reparsed =
                    Target::parse(&other.url).unwrap_or_else(|e| panic!("{}: {e}", other.url));
                assert_eq!(reparsed.dbname(), name, "{}", other.url);
                let (args, password) = other.libpq_args();
                let d = args
                    .iter()
                    .position(|a| a == "-d")
                    .map(|i| args[i + 1].clone());
                let expected = if name.contains('=') || name.starts_with("postgres://") {
                    format!("dbname={}", conninfo_value(name))
                } else {
                    name.to_string()
                };
                assert_eq!(d, Some(expected.into()));
                assert_eq!(password.is_some(), url.contains(":pw@"));
            }
        }
    }

    #[test]
    fn a_libpq_command_has_the_arguments_and_the_password_apart() {
        let target = Target::parse("postgres://u:pw@h:5/db").unwrap_or_else(|e| panic!("{e}"));
        let command = target.libpq_command("pg_dump");
        assert_eq!(command.get_program(), "pg_dump");
        let args: Vec<&OsStr> = command.get_args().collect();
        assert_eq!(args, target.libpq_args().0);
        assert!(!args.iter().any(|a| a.to_string_lossy().contains("pw")));
        let envs: Vec<_> = command.get_envs().collect();
        assert_eq!(envs, [(OsStr::new("PGPASSWORD"), Some(OsStr::new("pw")))]);
    }
}
