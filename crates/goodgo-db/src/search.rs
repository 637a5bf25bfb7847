//! The listing search: filters in, one parameterised SQL query out. Shared by the API and
//! by the tests that check the schema's indexes serve it. Pure: no database here.
//!
//! Only active listings are searched. Pagination is keyset: the cursor carries the sort
//! key and id of the last row seen, so pages never skip or repeat a row as data changes.

use std::fmt::Write as _;

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best full-text match first (needs `q`; without it, newest).
    Relevance,
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
}

/// The filters of a search. Text values are passed as parameters, never spliced in.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub q: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    pub min_bedrooms: Option<i16>,
    pub property_type: Option<String>,
    pub listing_type: Option<String>,
    pub sort: Sort,
    /// The last row of the previous page: its sort key (as text) and id.
    pub after: Option<(String, i64)>,
    /// Rows wanted (the query asks for one more, to know whether a next page exists).
    pub limit: i64,
}

/// A query and its parameters, all bound as text (or bigint for ids and limits) and cast
/// in SQL, so callers need no PostgreSQL type mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub sql: String,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// The columns every search returns, in this order: id, title, price, currency,
/// listing_type, property_type, bedrooms, bathrooms, area_m2, address, city, district,
/// published_at (ISO 8601, UTC); then `rank` and `sort_key`: the row's key in the
/// effective sort as exact text (published_at, price or rank), which a cursor carries back
/// as `Filters::after`. Numbers that must stay exact (price, area) come as text. [`col`]
/// names each position, so readers index rows without looking columns up by name.
pub const COLUMNS: &str = "id, title, price::text AS price, currency, listing_type::text AS listing_type, property_type::text AS property_type, bedrooms, bathrooms, area_m2::text AS area_m2, address, city, district, to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS published_at";

/// The position of each column of a search row (see [`COLUMNS`]).
pub mod col {
    pub const ID: usize = 0;
    pub const TITLE: usize = 1;
    pub const PRICE: usize = 2;
    pub const CURRENCY: usize = 3;
    pub const LISTING_TYPE: usize = 4;
    pub const PROPERTY_TYPE: usize = 5;
    pub const BEDROOMS: usize = 6;
    pub const BATHROOMS: usize = 7;
    pub const AREA_M2: usize = 8;
    pub const ADDRESS: usize = 9;
    pub const CITY: usize = 10;
    pub const DISTRICT: usize = 11;
    pub const PUBLISHED_AT: usize = 12;
    pub const RANK: usize = 13;
    pub const SORT_KEY: usize = 14;
}

impl Filters {
    pub fn effective_sort(&self) -> Sort {
        match (self.sort, &self.q) {
            (Sort::Relevance, None) => Sort::Newest,
            (sort, _) => sort,
        }
    }

    /// Builds the query.
    pub fn to_query(&self) -> Query {
        let mut params: Vec<Param> = Vec::new();
        let mut p = |v: Param| {
            params.push(v);
            format!("${}", params.len())
        };
        let sort = self.effective_sort();
        let mut sql = String::new();
        let q_param = self.q.as_ref().map(|q| p(Param::Text(q.clone())));
        let rank = q_param
            .as_ref()
            .map(|q| format!("ts_rank(search, websearch_to_tsquery('simple', {q}::text))"))
            .unwrap_or_else(|| "0::real".into());
        let key = match sort {
            Sort::Newest => "listings.published_at::text".to_string(),
            Sort::PriceAsc | Sort::PriceDesc => "listings.price::text".to_string(),
            Sort::Relevance => format!("{rank}::text"),
        };
        let _ = write!(
            sql,
            "SELECT {COLUMNS}, {rank} AS rank, {key} AS sort_key FROM listings WHERE status = 'active'"
        );
        if let Some(q) = &q_param {
            let _ = write!(
                sql,
                " AND search @@ websearch_to_tsquery('simple', {q}::text)"
            );
        }
        // Each filter that is set adds its condition, its value a parameter (at `{}`).
        let conditions = [
            (
                self.city.clone().map(Param::Text),
                "listings.city = {}::text",
            ),
            (
                self.district.clone().map(Param::Text),
                "district = {}::text",
            ),
            (
                self.min_price.clone().map(Param::Text),
                "price >= {}::text::numeric",
            ),
            (
                self.max_price.clone().map(Param::Text),
                "price <= {}::text::numeric",
            ),
            (
                self.min_bedrooms.map(|v| Param::Int(i64::from(v))),
                "bedrooms >= {}::bigint",
            ),
            (
                self.property_type.clone().map(Param::Text),
                "property_type = {}::text::property_type",
            ),
            (
                self.listing_type.clone().map(Param::Text),
                "listing_type = {}::text::listing_type",
            ),
        ];
        for (value, condition) in conditions {
            if let Some(v) = value {
                let _ = write!(sql, " AND {}", condition.replace("{}", &p(v)));
            }
        }
        if let Some((key, id)) = &self.after {
            let key_param = p(Param::Text(key.clone()));
            let id_param = p(Param::Int(*id));
            let cond = match sort {
                Sort::Newest => format!(
                    "(published_at, id) < ({key_param}::text::timestamptz, {id_param}::bigint)"
                ),
                Sort::PriceAsc => {
                    format!("(price, id) > ({key_param}::text::numeric, {id_param}::bigint)")
                }
                Sort::PriceDesc => {
                    format!("(price, id) < ({key_param}::text::numeric, {id_param}::bigint)")
                }
                Sort::Relevance => {
                    format!("({rank}, id) < ({key_param}::text::real, {id_param}::bigint)")
                }
            };
            let _ = write!(sql, " AND {cond}");
        }
        let order = match sort {
            // Qualified: the select list casts price to text under the same name, and ORDER BY
            // would otherwise sort by that text.
            Sort::Newest => "listings.published_at DESC, listings.id DESC",
            Sort::PriceAsc => "listings.price ASC, listings.id ASC",
            Sort::PriceDesc => "listings.price DESC, listings.id DESC",
            Sort::Relevance => "rank DESC, listings.id DESC",
        };
        let limit = p(Param::Int(self.limit.clamp(1, 100) + 1));
        let _ = write!(sql, " ORDER BY {order} LIMIT {limit}::bigint");
        Query { sql, params }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name each top-level item of a select list gives its column.
    fn select_names(list: &str) -> Vec<String> {
        let (mut names, mut depth, mut quoted, mut start) = (Vec::new(), 0, false, 0);
        let mut push = |item: &str| {
            names.push(
                item.split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        for (i, c) in list.char_indices() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => {
                    push(&list[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        push(&list[start..]);
        names
    }

    #[test]
    fn column_positions_match_the_select_list() {
        let q = Filters {
            q: Some("pool".into()),
            sort: Sort::Relevance,
            limit: 5,
            ..Filters::default()
        }
        .to_query();
        let list = q.sql.strip_prefix("SELECT ").unwrap_or_default();
        let list = &list[..list.find(" FROM listings").unwrap_or(list.len())];
        let names = select_names(list);
        let expected = [
            (col::ID, "id"),
            (col::TITLE, "title"),
            (col::PRICE, "price"),
            (col::CURRENCY, "currency"),
            (col::LISTING_TYPE, "listing_type"),
            (col::PROPERTY_TYPE, "property_type"),
            (col::BEDROOMS, "bedrooms"),
            (col::BATHROOMS, "bathrooms"),
            (col::AREA_M2, "area_m2"),
            (col::ADDRESS, "address"),
            (col::CITY, "city"),
            (col::DISTRICT, "district"),
            (col::PUBLISHED_AT, "published_at"),
            (col::RANK, "rank"),
            (col::SORT_KEY, "sort_key"),
        ];
        assert_eq!(names.len(), expected.len(), "{names:?}");
        for (pos, name) in expected {
            assert_eq!(names[pos], name, "column {pos} in {names:?}");
        }
    }

    #[test]
    fn filters_become_parameters_not_text() {
        let f = Filters {
            city: Some("Da Nang'; DROP TABLE users; --".into()),
            min_bedrooms: Some(2),
            limit: 20,
            ..Filters::default()
        };
        let q = f.to_query();
        assert!(!q.sql.contains("DROP"), "{}", q.sql);
        assert_eq!(
            q.params,
            vec![
                Param::Text("Da Nang'; DROP TABLE users; --".into()),
                Param::Int(2),
                Param::Int(21)
            ]
        );
        assert!(
            q.sql.ends_with(
                "ORDER BY listings.published_at DESC, listings.id DESC LIMIT $3::bigint"
            ),
            "{}",
            q.sql
        );
    }

    #[test]
    fn every_sort_selects_its_cursor_key_as_text() {
        for (sort, key) in [
            (Sort::Newest, "listings.published_at::text AS sort_key"),
            (Sort::PriceAsc, "listings.price::text AS sort_key"),
            (Sort::PriceDesc, "listings.price::text AS sort_key"),
            (
                Sort::Relevance,
                "ts_rank(search, websearch_to_tsquery('simple', $1::text))::text AS sort_key",
            ),
        ] {
            let f = Filters {
                q: Some("quiet".into()),
                sort,
                limit: 5,
                ..Filters::default()
            };
            let sql = f.to_query().sql;
            assert!(sql.contains(key), "{sort:?}: {sql}");
        }
    }

    #[test]
    fn relevance_without_text_is_newest() {
        let f = Filters {
            sort: Sort::Relevance,
            limit: 5,
            ..Filters::default()
        };
        assert_eq!(f.effective_sort(), Sort::Newest);
        let f = Filters {
            sort: Sort::PriceAsc,
            after: Some(("100.00".into(), 7)),
            limit: 500,
            ..Filters::default()
        };
        let q = f.to_query();
        assert!(
            q.sql
                .contains("(price, id) > ($1::text::numeric, $2::bigint)"),
            "{}",
            q.sql
        );
        assert_eq!(
            q.params.last(),
            Some(&Param::Int(101)),
            "limit is capped at 100"
        );
    }
}
