//! The transactional outbox: work to do once a change is committed (an e-mail to send
//! today; deleting a listing's photos from object storage, say, tomorrow), written as a row
//! in the transaction of the change with [`enqueue`], and carried out by the [`Worker`].
//!
//! Each row has a `topic`; the [`Dispatcher`] holds one [`Handler`] per topic. Adding a
//! kind of delivery is one more handler registered in [`crate::outbox_worker`]: the table,
//! the locking, the retries and the backoff are shared. A worker only takes rows of the
//! topics it has handlers for, so a release that does not know a topic leaves its rows to
//! one that does.
//!
//! The worker takes one due row at a time, `FOR UPDATE SKIP LOCKED`, in a transaction that
//! runs the handler and records the outcome: any number of workers (API replicas) share
//! the table without taking the same row, and a worker killed mid-batch leaves the row it
//! was on locked only until its connection goes: the row is still pending, and the next
//! worker does it. Each row has a unique `key`, the idempotency key its handler passes on
//! (an e-mail's Message-ID), so the one case where work is repeated (killed after the
//! handler finished but before the commit) is recognisable as the same message.
//!
//! A handler's failure is retried with exponential backoff (`retry_base` doubled per
//! attempt, at most `retry_max`) until `max_attempts`; a permanent failure (a recipient the
//! mail server refuses) is not retried. Either way the row ends `failed` with its
//! `last_error`, for an operator to read.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::ApiError;

/// A row to handle.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub topic: String,
    /// The idempotency key (a UUID): the same for every attempt.
    pub key: String,
    pub payload: Value,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// Why a handler did not finish its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt later (a connection refused, a 4xx reply from a mail server).
    Retry(String),
    /// Never going to work (a 5xx reply): the row fails now.
    Permanent(String),
}

/// What a handler did with its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Carried out: the row becomes `sent`.
    Sent,
    /// Nothing to do any more (why): the row becomes `skipped`.
    Skipped(String),
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Done, Failure>> + Send + 'a>>;

/// What carries out the jobs of one topic. `tx` is the transaction that holds the row's
/// lock and records the outcome: a handler may read and write in it.
pub trait Handler: Send + Sync {
    fn handle<'a>(
        &'a self,
        tx: &'a deadpool_postgres::Transaction<'_>,
        job: &'a Job,
    ) -> HandlerFuture<'a>;
}

/// The handlers, by topic.
#[derive(Default, Clone)]
pub struct Dispatcher {
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl Dispatcher {
    pub fn new() -> Dispatcher {
        Dispatcher::default()
    }

    /// Registers `handler` for the rows of `topic`.
    pub fn with(mut self, topic: &str, handler: Arc<dyn Handler>) -> Dispatcher {
        self.handlers.insert(topic.to_string(), handler);
        self
    }

    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.handlers.keys().cloned().collect();
        t.sort();
        t
    }
}

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long to sleep when nothing is due.
    pub poll: Duration,
    /// The delay before the second attempt; doubled for each one after.
    pub retry_base: Duration,
    /// The longest delay between attempts.
    pub retry_max: Duration,
    /// Attempts before a row is given up as `failed`.
    pub max_attempts: i32,
    /// How long `sent` and `skipped` rows are kept after they were done; `None`: forever.
    /// `failed` and `pending` rows are never pruned.
    pub keep: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            max_attempts: 10,
            keep: Some(Duration::from_secs(30 * 86_400)),
        }
    }
}

impl Settings {
    /// The delay after the `attempts`-th failed attempt (1 for the first).
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
        self.retry_base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }
}

/// Writes a job of `topic` in `tx` (the transaction of the change it follows): its id.
pub async fn enqueue<C: deadpool_postgres::GenericClient>(
    tx: &C,
    topic: &str,
    payload: &Value,
) -> Result<i64, ApiError> {
    let row = tx
        .query_one(
            "INSERT INTO outbox (topic, key, payload) VALUES ($1, gen_random_uuid(), $2::text::jsonb) RETURNING id",
            &[&topic, &payload.to_string()],
        )
        .await?;
    Ok(row.get(0))
}

/// What one step of the worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        id: i64,
    },
    Skipped {
        id: i64,
        why: String,
    },
    /// Will be tried again after the backoff.
    Retrying {
        id: i64,
        error: String,
    },
    Failed {
        id: i64,
        error: String,
    },
}

/// Delivers due outbox rows through the dispatcher's handlers.
#[derive(Clone)]
pub struct Worker {
    pool: deadpool_postgres::Pool,
    dispatcher: Dispatcher,
    settings: Settings,
}

/// How often a running worker prunes done rows.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows deleted per statement while pruning, so no statement holds many locks for long.
const PRUNE_BATCH: i64 = 1000;

const PRUNE: &str = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
     WHERE status IN ('sent', 'skipped') AND done_at < now() - make_interval(secs => $1) \
     ORDER BY id LIMIT $2)";

const TAKE: &str = "SELECT id, topic, key::text, payload::text, attempts::int FROM outbox \
     WHERE status = 'pending' AND next_attempt_at <= now() AND topic = ANY($1) \
     ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED";

impl Worker {
    pub fn new(
        pool: deadpool_postgres::Pool,
        dispatcher: Dispatcher,
        settings: Settings,
    ) -> Worker {
        Worker {
            pool,
            dispatcher,
            settings,
        }
    }

    /// Takes one due row (none when nothing is due or every due row is taken) and handles
    /// it, in one transaction.
    pub async fn step(&self) -> Result<Option<Outcome>, ApiError> {
        let topics = self.dispatcher.topics();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx.query_opt(TAKE, &[&topics]).await? else {
            return Ok(None);
        };
        let job = Job {
            id: row.get(0),
            topic: row.get(1),
            key: row.get(2),
            payload: serde_json::from_str(row.get::<_, &str>(3)).unwrap_or(Value::Null),
            attempts: row.get(4),
        };
        let outcome = match self.dispatcher.handlers.get(&job.topic) {
            Some(handler) => handler.handle(&tx, &job).await,
            None => Err(Failure::Retry(format!(
                "no handler for topic {}",
                job.topic
            ))),
        };
        let attempts = job.attempts.saturating_add(1);
        let outcome = match outcome {
            Ok(Done::Sent) => {
                tx.execute(
                    "UPDATE outbox SET status = 'sent', attempts = $2::int, done_at = now(), last_error = NULL WHERE id = $1",
                    &[&job.id, &attempts],
                )
                .await?;
                Outcome::Done { id: job.id }
            }
            Ok(Done::Skipped(why)) => {
                tx.execute(
                    "UPDATE outbox SET status = 'skipped', attempts = $2::int, done_at = now(), last_error = left($3, 1000) WHERE id = $1",
                    &[&job.id, &attempts, &why],
                )
                .await?;
                Outcome::Skipped { id: job.id, why }
            }
            Err(Failure::Retry(error)) if attempts < self.settings.max_attempts => {
                let delay = self.settings.backoff(attempts).as_secs_f64();
                tx.execute(
                    "UPDATE outbox SET attempts = $2::int, last_error = left($3, 1000), \
                     next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
                    &[&job.id, &attempts, &error, &delay],
                )
                .await?;
                tracing::warn!(outbox_id = job.id, topic = %job.topic, attempts, retry_in_s = delay, error = %error, "outbox job failed; will retry");
                Outcome::Retrying { id: job.id, error }
            }
            Err(Failure::Retry(error) | Failure::Permanent(error)) => {
                tx.execute(
                    "UPDATE outbox SET status = 'failed', attempts = $2::int, last_error = left($3, 1000), done_at = now() WHERE id = $1",
                    &[&job.id, &attempts, &error],
                )
                .await?;
                tracing::error!(outbox_id = job.id, topic = %job.topic, attempts, error = %error, "outbox job failed for good");
                Outcome::Failed { id: job.id, error }
            }
        };
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Steps until nothing is due: the outcomes.
    pub async fn drain(&self) -> Result<Vec<Outcome>, ApiError> {
        let mut outcomes = Vec::new();
        while let Some(o) = self.step().await? {
            outcomes.push(o);
        }
        Ok(outcomes)
    }

    /// Deletes the `sent` and `skipped` rows done longer than `keep` ago (the
    /// notifications they sent stay, without their outbox row), in batches: how many.
    /// Nothing without a `keep`.
    pub async fn prune(&self) -> Result<u64, ApiError> {
        let Some(keep) = self.settings.keep else {
            return Ok(0);
        };
        let client = self.pool.get().await?;
        let mut pruned = 0u64;
        loop {
            let n = client
                .execute(PRUNE, &[&keep.as_secs_f64(), &PRUNE_BATCH])
                .await?;
            pruned += n;
            if n < PRUNE_BATCH.unsigned_abs() {
                return Ok(pruned);
            }
        }
    }

    /// Runs until the task is dropped: drains, then sleeps `poll` (also after an error,
    /// such as the database being unreachable, which is logged); prunes done rows when it
    /// starts and every hour.
    pub async fn run(self) {
        tracing::info!(topics = ?self.dispatcher.topics(), "outbox worker started");
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(tokio::time::Instant::now());
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "outbox: pruned done rows"),
                    Err(e) => tracing::error!(error = %e, "outbox: pruning failed"),
                }
            }
            if let Err(e) = self.drain().await {
                tracing::error!(error = %e, "outbox worker step failed");
            }
            tokio::time::sleep(self.settings.poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = Settings {
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(600),
            ..Settings::default()
        };
        let d: Vec<u64> = (1..=7).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(d, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(s.backoff(0).as_secs(), 30);
        assert_eq!(s.backoff(i32::MAX).as_secs(), 600);
    }
}
