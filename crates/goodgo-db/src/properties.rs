//! What a database is besides what `pg_dump` (without `--create`) dumps of it: its owner,
//! its settings, its privileges, its connection limit and its comment. A restore that
//! replaces a database reads them from the one it replaces and gives them to the restored
//! one, as `pg_restore` into the same database would have kept them.

use crate::DbError;
use crate::admin::{Target, ident, literal};

/// A database's properties, as the catalog holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseProperties {
    /// The owner's role name.
    pub owner: String,
    /// `(role, "name=value")`, as `pg_db_role_setting` holds them: `None` for a setting of
    /// every role (`ALTER DATABASE … SET`), a role for `ALTER ROLE … IN DATABASE … SET`.
    pub settings: Vec<(Option<String>, String)>,
    /// The privileges granted on it (`aclexplode(datacl)`): grantee (`None`: PUBLIC),
    /// privilege (`CONNECT`, `CREATE`, `TEMPORARY`), grantable. `None` for the defaults
    /// (`datacl` NULL: PUBLIC may connect and make temporary tables).
    pub privileges: Option<Vec<(Option<String>, String, bool)>>,
    /// `datconnlimit`: -1 for none.
    pub connection_limit: i32,
    pub comment: Option<String>,
}

/// The properties of database `name` on `server`'s server; `None` when it does not exist.
/// Connects to `server`'s own database.
pub async fn read(server: &Target, name: &str) -> Result<Option<DatabaseProperties>, DbError> {
    let client = server.connect().await?;
    let doing = || format!("reading the owner, settings and privileges of database {name}");
    let Some(row) = client
        .query_opt(
            "SELECT pg_catalog.pg_get_userbyid(datdba)::text, oid, datconnlimit, datacl IS NULL,
                    pg_catalog.shobj_description(oid, 'pg_database')
               FROM pg_catalog.pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map_err(|e| DbError::pg(doing(), e))?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(1);
    let settings = client
        .query(
            "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole)::text END,
                    c.setting
               FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) WITH ORDINALITY AS c(setting, n)
              WHERE s.setdatabase = $1
              ORDER BY s.setrole, c.n",
            &[&oid],
        )
        .await
        .map_err(|e| DbError::pg(doing(), e))?;
    let default_privileges: bool = row.get(3);
    let privileges = if default_privileges {
        None
    } else {
        let rows = client
            .query(
                "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
                        a.privilege_type, a.is_grantable
                   FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
                  WHERE d.oid = $1
                  ORDER BY 1 NULLS FIRST, 2",
                &[&oid],
            )
            .await
            .map_err(|e| DbError::pg(doing(), e))?;
        Some(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        )
    };
    Ok(Some(DatabaseProperties {
        owner: row.get(0),
        settings: settings.iter().map(|r| (r.get(0), r.get(1))).collect(),
        privileges,
        connection_limit: row.get(2),
        comment: row.get(4),
    }))
}

/// The statements that give database `name` `properties`: settings, connection limit,
/// comment and privileges first, the owner last (once another role owns it, the
/// connecting one may no longer alter it).
pub fn statements(name: &str, properties: &DatabaseProperties) -> Vec<String> {
    let db = ident(name);
    let mut out = Vec::new();
    for (role, setting) in &properties.settings {
        let Some((key, value)) = setting.split_once('=') else {
            continue;
        };
        let scope = match role {
            None => format!("DATABASE {db}"),
            Some(role) => format!("ROLE {} IN DATABASE {db}", ident(role)),
        };
        out.push(format!(
            "ALTER {scope} SET {} TO {}",
            ident(key),
            setting_value(key, value)
        ));
    }
    if properties.connection_limit != -1 {
        out.push(format!(
            "ALTER DATABASE {db} CONNECTION LIMIT {}",
            properties.connection_limit
        ));
    }
    if let Some(comment) = &properties.comment {
        out.push(format!("COMMENT ON DATABASE {db} IS {}", literal(comment)));
    }
    if let Some(privileges) = &properties.privileges {
        out.push(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"));
        for (grantee, privilege, grantable) in privileges {
            let to = grantee
                .as_deref()
                .map_or_else(|| "PUBLIC".to_string(), ident);
            let option = if *grantable { " WITH GRANT OPTION" } else { "" };
            out.push(format!(
                "GRANT {privilege} ON DATABASE {db} TO {to}{option}"
            ));
        }
    }
    out.push(format!(
        "ALTER DATABASE {db} OWNER TO {}",
        ident(&properties.owner)
    ));
    out
}

/// Gives database `name` `properties`, one statement at a time: the ones that failed, each
/// with the server's reason (a role without the right to give a property still gets the
/// others). Connects to `server`'s own database.
pub async fn apply(
    server: &Target,
    name: &str,
    properties: &DatabaseProperties,
) -> Result<Vec<String>, DbError> {
    let client = server.connect().await?;
    let mut failed = Vec::new();
    for statement in statements(name, properties) {
        if let Err(e) = client.batch_execute(&statement).await {
            failed.push(format!("{statement}: {}", crate::describe(&e)));
        }
    }
    Ok(failed)
}

/// A stored setting's value as SQL: a string literal, or, for the settings that are lists
/// of quoted names (`search_path`…), each element a literal, as `pg_dump` writes them (one
/// literal would make the whole list one name).
fn setting_value(key: &str, value: &str) -> String {
    const LISTS: [&str; 6] = [
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    ];
    if !LISTS.contains(&key.to_ascii_lowercase().as_str()) {
        return literal(value);
    }
    split_list(value)
        .iter()
        .map(|e| literal(e))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The elements of a list setting as PostgreSQL stores it (`"$user", public`): separated by
/// commas, blanks around them dropped, double quotes around one removed (`""` is a quote).
fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut element = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                element.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut element)),
            c if c.is_whitespace() && !quoted => {}
            c => element.push(c),
        }
    }
    out.push(element);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_settings_are_written_one_literal_per_element() {
        assert_eq!(
            setting_value("search_path", r#""$user", public, "Odd ""Name""""#),
            r#"'$user', 'public', 'Odd "Name"'"#
        );
        assert_eq!(setting_value("search_path", r#""""#), "''");
        assert_eq!(setting_value("TimeZone", "Europe/Paris"), "'Europe/Paris'");
        assert_eq!(setting_value("app.note", "it's, a list"), "'it''s, a list'");
    }

    #[test]
    fn the_owner_is_given_last_and_privileges_replace_the_defaults() {
        let properties = DatabaseProperties {
            owner: "app".into(),
            settings: vec![
                (None, "TimeZone=UTC".into()),
                (Some("Reporter".into()), "work_mem=8MB".into()),
            ],
            privileges: Some(vec![
                (None, "TEMPORARY".into(), false),
                (Some("app".into()), "CONNECT".into(), true),
            ]),
            connection_limit: 5,
            comment: Some("the app's".into()),
        };
        assert_eq!(
            statements("my db", &properties),
            [
                "ALTER DATABASE \"my db\" SET \"TimeZone\" TO 'UTC'",
                "ALTER ROLE \"Reporter\" IN DATABASE \"my db\" SET \"work_mem\" TO '8MB'",
                "ALTER DATABASE \"my db\" CONNECTION LIMIT 5",
                "COMMENT ON DATABASE \"my db\" IS 'the app''s'",
                "REVOKE ALL ON DATABASE \"my db\" FROM PUBLIC",
                "GRANT TEMPORARY ON DATABASE \"my db\" TO PUBLIC",
                "GRANT CONNECT ON DATABASE \"my db\" TO \"app\" WITH GRANT OPTION",
                "ALTER DATABASE \"my db\" OWNER TO \"app\"",
            ]
        );
    }
}
