//! Grandfather-father-son retention: which backups `backup prune` keeps. Pure, so the
//! policy is tested on synthetic dated backups.
//!
//! The rules, as restic and borg apply them: backups are taken newest first; the `last` N
//! are kept; then, for each of `daily`, `weekly` and `monthly`, the newest backup of each
//! of the N most recent days (UTC), ISO weeks and months that have one is kept. The newest
//! verified backup is always kept, and so is the newest backup: prune never empties a
//! destination.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How many backups of each kind to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            last: 3,
            daily: 7,
            weekly: 4,
            monthly: 6,
        }
    }
}

/// One backup, as the policy sees it.
#[derive(Debug, Clone)]
pub struct Dated {
    pub id: String,
    pub at: OffsetDateTime,
    pub verified: bool,
}

/// Why a backup is kept (the first rule that keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Last,
    Daily,
    Weekly,
    Monthly,
    NewestVerified,
    Newest,
}

fn utc(d: &Dated) -> OffsetDateTime {
    d.at.to_offset(time::UtcOffset::UTC)
}

/// The calendar period a backup falls in: (year, day, week or month).
type Bucket = dyn Fn(&Dated) -> (i32, u32);

/// The decision for each backup, newest first: `Some(reason)` kept, `None` deleted.
pub fn decide(policy: &Policy, backups: &[Dated]) -> Vec<(Dated, Option<Reason>)> {
    let mut sorted: Vec<Dated> = backups.to_vec();
    sorted.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let mut keep: Vec<Option<Reason>> = vec![None; sorted.len()];
    for slot in keep.iter_mut().take(policy.last as usize) {
        *slot = Some(Reason::Last);
    }
    let buckets: [(u32, Reason, &Bucket); 3] = [
        (policy.daily, Reason::Daily, &|d| {
            (utc(d).year(), u32::from(utc(d).ordinal()))
        }),
        (policy.weekly, Reason::Weekly, &|d| {
            let (y, w, _) = utc(d).to_iso_week_date();
            (y, u32::from(w))
        }),
        (policy.monthly, Reason::Monthly, &|d| {
            (utc(d).year(), u32::from(u8::from(utc(d).month())))
        }),
    ];
    for (count, reason, bucket) in buckets {
        let mut seen: Vec<(i32, u32)> = Vec::new();
        for (i, d) in sorted.iter().enumerate() {
            if seen.len() >= count as usize {
                break;
            }
            let b = bucket(d);
            if !seen.contains(&b) {
                seen.push(b);
                keep[i].get_or_insert(reason);
            }
        }
    }
    if let Some(i) = sorted.iter().position(|d| d.verified) {
        keep[i].get_or_insert(Reason::NewestVerified);
    }
    if let Some(first) = keep.first_mut() {
        first.get_or_insert(Reason::Newest);
    }
    sorted.into_iter().zip(keep).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64, hour: i64) -> OffsetDateTime {
        // 2026-12-01 00:00 UTC, a Tuesday.
        OffsetDateTime::from_unix_timestamp(1_796_083_200).expect("time")
            - time::Duration::days(days_ago)
            + time::Duration::hours(hour)
    }

    fn set(spec: &[(i64, i64, bool)]) -> Vec<Dated> {
        spec.iter()
            .map(|&(d, h, verified)| Dated {
                id: format!("d{d}h{h}"),
                at: at(d, h),
                verified,
            })
            .collect()
    }

    fn policy(last: u32, daily: u32, weekly: u32, monthly: u32) -> Policy {
        Policy {
            last,
            daily,
            weekly,
            monthly,
        }
    }

    fn kept(policy: Policy, backups: &[Dated]) -> Vec<String> {
        decide(&policy, backups)
            .into_iter()
            .filter(|(_, r)| r.is_some())
            .map(|(d, _)| d.id)
            .collect()
    }

    #[test]
    fn last_n_keeps_the_newest_regardless_of_day() {
        let b = set(&[(0, 1, false), (0, 2, false), (0, 3, false), (1, 1, false)]);
        let p = policy(2, 0, 0, 0);
        assert_eq!(kept(p, &b), ["d0h3", "d0h2"]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        // Four a day for ten days.
        let spec: Vec<(i64, i64, bool)> = (0..10)
            .flat_map(|d| (0..4).map(move |h| (d, h * 5, false)))
            .collect();
        let b = set(&spec);
        let p = policy(0, 3, 0, 0);
        assert_eq!(kept(p, &b), ["d0h15", "d1h15", "d2h15"]);
    }

    #[test]
    fn weekly_and_monthly_reach_back_over_gaps() {
        // One a day for 120 days.
        let spec: Vec<(i64, i64, bool)> = (0..120).map(|d| (d, 12, false)).collect();
        let b = set(&spec);
        let weekly = kept(policy(0, 0, 3, 0), &b);
        // 2026-12-01 is a Tuesday: this week has Tue and Mon; the newest of the two
        // weeks before are their Sundays (2 and 9 days ago).
        assert_eq!(weekly, ["d0h12", "d2h12", "d9h12"]);
        let monthly = kept(policy(0, 0, 0, 4), &b);
        // December 1st; then the last days of November, October and September.
        assert_eq!(monthly, ["d0h12", "d1h12", "d31h12", "d62h12"]);
    }

    #[test]
    fn rules_combine_and_the_rest_goes() {
        let spec: Vec<(i64, i64, bool)> = (0..60).map(|d| (d, 12, false)).collect();
        let b = set(&spec);
        let decisions = decide(&policy(2, 3, 2, 3), &b);
        let reasons: Vec<(&str, Option<Reason>)> = decisions
            .iter()
            .filter(|(_, r)| r.is_some())
            .map(|(d, r)| (d.id.as_str(), *r))
            .collect();
        assert_eq!(
            reasons,
            [
                ("d0h12", Some(Reason::Last)),
                ("d1h12", Some(Reason::Last)),
                ("d2h12", Some(Reason::Daily)),
                ("d31h12", Some(Reason::Monthly)),
            ]
        );
        assert_eq!(decisions.iter().filter(|(_, r)| r.is_none()).count(), 56);
    }

    #[test]
    fn never_the_newest_verified_nor_everything() {
        let b = set(&[(0, 1, false), (1, 1, false), (5, 1, true), (9, 1, true)]);
        let none = policy(0, 0, 0, 0);
        let decisions = decide(&none, &b);
        let kept: Vec<(&str, Reason)> = decisions
            .iter()
            .filter_map(|(d, r)| r.map(|r| (d.id.as_str(), r)))
            .collect();
        assert_eq!(
            kept,
            [("d0h1", Reason::Newest), ("d5h1", Reason::NewestVerified)]
        );
        assert!(decide(&none, &[]).is_empty());
    }
}
