//! Deterministic, realistic seed data: an admin, agents, buyers and listings spread over
//! cities, districts, prices and property types, loaded with COPY. The same `listings`
//! count always produces the same rows (but for the password hash's random salt).
//!
//! A workspace with a schema of its own seeds with its own SQL instead ([`run_sql`]); the
//! CLI chooses which, by what the workspace ships and which tables exist.

use std::fmt::Write as _;
use std::io::Cursor;
use std::path::Path;

use futures_util::SinkExt;
use tokio_postgres::Client;

use crate::DbError;

/// The password of every seeded account (development data only).
pub const DEV_PASSWORD: &str = "goodgo-dev-password";

/// A small xorshift generator: fast, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// 0.0 ..= 1.0
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct City {
    name: &'static str,
    lat: f64,
    lon: f64,
    /// USD per m² for sale; rent per m² per month is about 0.5% of it.
    price_m2: f64,
    districts: &'static [&'static str],
}

const CITIES: &[City] = &[
    City {
        name: "Ho Chi Minh City",
        lat: 10.7769,
        lon: 106.7009,
        price_m2: 3200.0,
        districts: &[
            "District 1",
            "District 3",
            "Binh Thanh",
            "Thu Duc",
            "District 7",
            "Phu Nhuan",
        ],
    },
    City {
        name: "Hanoi",
        lat: 21.0278,
        lon: 105.8342,
        price_m2: 2900.0,
        districts: &[
            "Hoan Kiem",
            "Ba Dinh",
            "Tay Ho",
            "Cau Giay",
            "Dong Da",
            "Long Bien",
        ],
    },
    City {
        name: "Da Nang",
        lat: 16.0544,
        lon: 108.2022,
        price_m2: 2100.0,
        districts: &["Hai Chau", "Son Tra", "Ngu Hanh Son", "Thanh Khe"],
    },
    City {
        name: "Hai Phong",
        lat: 20.8449,
        lon: 106.6881,
        price_m2: 1500.0,
        districts: &["Le Chan", "Ngo Quyen", "Hong Bang"],
    },
    City {
        name: "Nha Trang",
        lat: 12.2388,
        lon: 109.1967,
        price_m2: 1800.0,
        districts: &["Loc Tho", "Vinh Hoa", "Phuoc Long"],
    },
    City {
        name: "Can Tho",
        lat: 10.0452,
        lon: 105.7469,
        price_m2: 1100.0,
        districts: &["Ninh Kieu", "Cai Rang", "Binh Thuy"],
    },
    City {
        name: "Vung Tau",
        lat: 10.4114,
        lon: 107.1362,
        price_m2: 1600.0,
        districts: &["Thang Tam", "Rach Dua", "Long Son"],
    },
    City {
        name: "Hue",
        lat: 16.4637,
        lon: 107.5909,
        price_m2: 1200.0,
        districts: &["Phu Hoi", "Vinh Ninh", "Thuan Hoa"],
    },
];

const STREETS: &[&str] = &[
    "Le Loi",
    "Nguyen Hue",
    "Tran Hung Dao",
    "Hai Ba Trung",
    "Pham Ngu Lao",
    "Vo Van Tan",
    "Dien Bien Phu",
    "Nguyen Trai",
    "Ly Thuong Kiet",
    "Bach Dang",
];
const ADJECTIVES: &[&str] = &[
    "Bright",
    "Spacious",
    "Renovated",
    "Quiet",
    "Modern",
    "Cosy",
    "Elegant",
    "Sunny",
    "Affordable",
    "Charming",
];
const FEATURES: &[&str] = &[
    "Close to the river and the night market.",
    "Walking distance to international schools.",
    "Balcony with a view over the city.",
    "Newly renovated kitchen and bathrooms.",
    "Secure parking for two motorbikes and a car.",
    "Pet friendly building with a rooftop garden.",
    "Fully furnished, ready to move in.",
    "Swimming pool and gym in the building.",
    "Quiet alley, ten minutes from the centre.",
    "Large windows and plenty of natural light.",
];

/// A property type: its share of listings in %, and the ranges of bedrooms and m².
#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    share: u64,
    bedrooms: (i64, i64),
    area: (i64, i64),
}

impl Kind {
    const fn new(name: &'static str, share: u64, bedrooms: (i64, i64), area: (i64, i64)) -> Self {
        Kind {
            name,
            share,
            bedrooms,
            area,
        }
    }
}

// name, share (%), bedrooms (from, to), area in m² (from, to)
const TYPES: &[Kind] = &[
    Kind::new("apartment", 45, (1, 4), (35, 160)),
    Kind::new("house", 20, (2, 6), (60, 300)),
    Kind::new("townhouse", 10, (2, 5), (50, 200)),
    Kind::new("villa", 5, (3, 8), (180, 800)),
    Kind::new("land", 7, (0, 0), (80, 2000)),
    Kind::new("office", 8, (0, 0), (40, 600)),
    Kind::new("shop", 5, (0, 0), (20, 250)),
];

/// How many accounts a seed of `listings` listings creates.
pub fn account_counts(listings: u64) -> (u64, u64) {
    let agents = (listings / 100).max(5);
    let buyers = (listings / 20).max(10);
    (agents, buyers)
}

/// What [`seed`] loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seeded {
    pub users: u64,
    pub agents: u64,
    pub listings: u64,
    pub took_ms: u64,
}

/// Loads the seed into an empty database (users and listings must be empty).
pub async fn seed(client: &mut Client, listings: u64) -> Result<Seeded, DbError> {
    let start = std::time::Instant::now();
    let existing: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM listings)",
            &[],
        )
        .await
        .map_err(|e| DbError::pg("counting existing rows (are the migrations applied?)", e))?
        .get(0);
    if existing > 0 {
        return Err(DbError::NotEmpty { rows: existing });
    }
    let hash = password_hash()?;
    let (agents, buyers) = account_counts(listings);
    let tx = client
        .transaction()
        .await
        .map_err(|e| DbError::pg("starting the seed transaction", e))?;

    let mut users = String::new();
    let _ = writeln!(users, "admin@goodgo.test\t{hash}\tadmin\tGoodGo Admin");
    for i in 1..=agents {
        let _ = writeln!(
            users,
            "agent{i:04}@goodgo.test\t{hash}\tagent\tAgent {i:04}"
        );
    }
    for i in 1..=buyers {
        let _ = writeln!(
            users,
            "buyer{i:05}@goodgo.test\t{hash}\tbuyer\tBuyer {i:05}"
        );
    }
    copy(
        &tx,
        "COPY users (email, password_hash, role, display_name) FROM STDIN",
        users.into_bytes(),
    )
    .await?;

    let agent_ids: Vec<i64> = tx
        .query("SELECT id FROM users WHERE role = 'agent' ORDER BY id", &[])
        .await
        .map_err(|e| DbError::pg("reading agent ids", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();

    let mut rng = Rng(0x5EED_600D_600D_5EED);
    let base: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let mut chunk = String::with_capacity(1 << 20);
    let columns = "COPY listings (owner_id, title, description, price, currency, listing_type, property_type, bedrooms, bathrooms, area_m2, address, city, district, latitude, longitude, status, created_at, updated_at, published_at) FROM STDIN";
    let sink = tx
        .copy_in(columns)
        .await
        .map_err(|e| DbError::pg("starting COPY listings", e))?;
    futures_util::pin_mut!(sink);
    for i in 0..listings {
        write_listing(&mut chunk, &mut rng, &agent_ids, base, i);
        if chunk.len() > (1 << 20) - 4096 {
            let bytes = std::mem::take(&mut chunk).into_bytes();
            sink.send(Cursor::new(bytes))
                .await
                .map_err(|e| DbError::pg("COPY listings", e))?;
        }
    }
    if !chunk.is_empty() {
        sink.send(Cursor::new(chunk.into_bytes()))
            .await
            .map_err(|e| DbError::pg("COPY listings", e))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| DbError::pg("finishing COPY listings", e))?;
    tx.commit()
        .await
        .map_err(|e| DbError::pg("committing the seed", e))?;
    client
        .batch_execute("ANALYZE users; ANALYZE listings;")
        .await
        .map_err(|e| DbError::pg("analysing the seeded tables", e))?;
    Ok(Seeded {
        users: 1 + agents + buyers,
        agents,
        listings,
        took_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Whether the schema is the one [`seed`] fills: it has `users` and `listings` tables.
pub async fn has_builtin_schema(client: &Client) -> Result<bool, DbError> {
    client
        .query_one(
            "SELECT to_regclass('users') IS NOT NULL AND to_regclass('listings') IS NOT NULL",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| DbError::pg("looking for the users and listings tables", e))
}

/// Whether any table holds a row: every ordinary table outside PostgreSQL's own schemas,
/// but for the migration history.
pub async fn has_rows(client: &Client) -> Result<bool, DbError> {
    let tables = client
        .query(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' \
             AND table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND table_schema NOT LIKE 'pg\\_%' AND table_name <> $1",
            &[&crate::runner::HISTORY_TABLE],
        )
        .await
        .map_err(|e| DbError::pg("listing the tables", e))?;
    for table in &tables {
        let name: String = table.get(0);
        let found: bool = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name})"), &[])
            .await
            .map_err(|e| DbError::pg(format!("looking for rows in {name}"), e))?
            .get(0);
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs a workspace's own seed SQL (`shown` is its path, for messages) in one transaction:
/// all of it is loaded or none of it.
pub async fn run_sql(client: &mut Client, shown: &Path, sql: &str) -> Result<(), DbError> {
    let doing = || format!("running {}", shown.display());
    let tx = client
        .transaction()
        .await
        .map_err(|e| DbError::pg(doing(), e))?;
    tx.batch_execute(sql)
        .await
        .map_err(|e| DbError::pg(doing(), e))?;
    tx.commit().await.map_err(|e| DbError::pg(doing(), e))
}

fn write_listing(out: &mut String, rng: &mut Rng, agents: &[i64], base: i64, i: u64) {
    let city = rng.pick(CITIES);
    let district = rng.pick(city.districts);
    let mut roll = rng.below(100);
    let mut kind = TYPES[0];
    for t in TYPES {
        if roll < t.share {
            kind = *t;
            break;
        }
        roll -= t.share;
    }
    let Kind {
        name,
        bedrooms: beds,
        area,
        ..
    } = kind;
    let bedrooms = rng.range(beds.0, beds.1);
    let bathrooms = if name == "land" {
        0
    } else {
        (bedrooms - rng.range(0, 1)).max(1)
    };
    let area_m2 = rng.range(area.0, area.1);
    let rent = name != "land" && rng.below(4) == 0;
    let jitter = 0.7 + rng.unit() * 0.6;
    let price = if rent {
        ((area_m2 as f64 * city.price_m2 * 0.005 * jitter) / 10.0)
            .round()
            .max(1.0)
            * 10.0
    } else {
        ((area_m2 as f64 * city.price_m2 * jitter) / 1000.0)
            .round()
            .max(1.0)
            * 1000.0
    };
    let adjective = rng.pick(ADJECTIVES);
    let title = if bedrooms > 0 {
        format!("{adjective} {bedrooms}-bedroom {name} in {district}")
    } else {
        format!("{adjective} {name} in {district}, {area_m2} m²")
    };
    let mut description = String::new();
    for _ in 0..3 {
        let feature: &&str = rng.pick(FEATURES);
        description.push_str(feature);
        description.push(' ');
    }
    let description = format!("{}Listing #{i} in {}.", description, city.name);
    let address = format!("{} {} Street", rng.range(1, 400), rng.pick(STREETS));
    let lat = city.lat + (rng.unit() - 0.5) * 0.12;
    let lon = city.lon + (rng.unit() - 0.5) * 0.12;
    let status = match rng.below(100) {
        0..=84 => "active",
        85..=91 => "draft",
        92..=96 => "sold",
        _ => "archived",
    };
    let created = base - rng.range(0, 365 * 86_400);
    let published = if status == "draft" {
        "\\N".to_string()
    } else {
        timestamp(created + rng.range(600, 3 * 86_400))
    };
    let owner = agents[(rng.below(agents.len() as u64)) as usize];
    let _ = writeln!(
        out,
        "{owner}\t{}\t{}\t{price:.2}\tUSD\t{}\t{name}\t{bedrooms}\t{bathrooms}\t{area_m2}\t{}\t{}\t{}\t{lat:.6}\t{lon:.6}\t{status}\t{}\t{}\t{published}",
        escape(&title),
        escape(&description),
        if rent { "rent" } else { "sale" },
        escape(&address),
        escape(city.name),
        escape(district),
        timestamp(created),
        timestamp(created),
    );
}

/// COPY text format escaping.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS+00`.
fn timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}+00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &str,
    data: Vec<u8>,
) -> Result<(), DbError> {
    let sink = tx
        .copy_in(statement)
        .await
        .map_err(|e| DbError::pg(statement.to_string(), e))?;
    futures_util::pin_mut!(sink);
    sink.send(Cursor::new(data))
        .await
        .map_err(|e| DbError::pg(statement.to_string(), e))?;
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| DbError::pg(statement.to_string(), e))?;
    Ok(())
}

fn password_hash() -> Result<String, DbError> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(DEV_PASSWORD.as_bytes())
        .map(|h| h.to_string())
        .map_err(|source| DbError::PasswordHash { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00+00");
        assert_eq!(timestamp(1_767_225_600), "2026-01-01 00:00:00+00");
        assert_eq!(timestamp(951_782_400 + 3661), "2000-02-29 01:01:01+00");
    }

    #[test]
    fn listings_are_deterministic() {
        let generate = || {
            let mut rng = Rng(1);
            let mut out = String::new();
            for i in 0..50 {
                write_listing(&mut out, &mut rng, &[1, 2, 3], 1_767_225_600, i);
            }
            out
        };
        assert_eq!(generate(), generate());
        assert_eq!(generate().lines().count(), 50);
        assert!(generate().lines().all(|l| l.split('\t').count() == 19));
    }
}
