//! Connections, databases and the arguments libpq's own tools (psql, pg_dump) need.

use std::ffi::OsString;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::DbError;

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
        let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
            DbError::Other(format!("bad database URL {}: {e}", redact(url)))
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
                    message: crate::describe(&e),
                })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
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
        args.push("-d".into());
        args.push(self.dbname().into());
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

fn replace_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[after_scheme..].find('/').map(|i| i + after_scheme);
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

/// Quotes an identifier for SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates database `name` on `server`'s server (connecting to `server`'s database).
pub async fn create_database(server: &Target, name: &str) -> Result<(), DbError> {
    let client = server.connect().await?;
    client
        .batch_execute(&format!("CREATE DATABASE {}", ident(name)))
        .await
        .map_err(|e| DbError::pg(format!("creating database {name}"), &e))
}

/// Drops database `name`, ending its sessions first; nothing when it does not exist.
pub async fn drop_database(server: &Target, name: &str) -> Result<(), DbError> {
    let client = server.connect().await?;
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(name)
        ))
        .await
        .map_err(|e| DbError::pg(format!("dropping database {name}"), &e))
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
    }
}
