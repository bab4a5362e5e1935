//! The one rate-limit algorithm (SPEC §7): the generic cell rate algorithm, as a pure function of
//! the time now and a bucket's state. Every store (memory, Redis, Redis Cluster) applies exactly
//! this arithmetic — the Redis script is a line-by-line copy — so they cannot disagree.
//!
//! A policy of `limit` requests per `period` lets one request through every `period / limit`
//! (the emission interval) and tolerates a burst of the whole quota at once. A bucket is one
//! number: its theoretical arrival time (TAT), the time at which it would be full again. There
//! are no windows, so there is no 2× burst at a window's edge, the quota comes back gradually,
//! and a late burst does not find a fresh window behind it.

/// A policy's rate, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per `period`.
    pub limit: u64,
    /// The period, in nanoseconds.
    pub period: u64,
}

impl Rate {
    /// The time one request takes from the quota.
    pub fn emission(&self) -> u64 {
        (self.period / self.limit.max(1)).max(1)
    }
}

/// What the algorithm decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Requests still allowed right now after this one (0 when refused).
    pub remaining: u64,
    /// Nanoseconds until the client can do more: refused, until the next request is allowed;
    /// allowed, until the whole quota is back.
    pub reset: u64,
    /// The bucket's new TAT (unchanged when refused).
    pub tat: u64,
}

/// Decides one request at `now` for a bucket whose TAT is `tat` (`None`, or a TAT in the past:
/// a full bucket).
pub fn decide(now: u64, tat: Option<u64>, rate: Rate) -> Decision {
    let t = rate.emission();
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(t);
    // The request fits when the bucket, with it, would be full again within one period.
    let allow_at = new_tat.saturating_sub(rate.period);
    if now < allow_at {
        return Decision {
            allowed: false,
            remaining: 0,
            reset: allow_at - now,
            tat,
        };
    }
    let used = new_tat - now;
    Decision {
        allowed: true,
        remaining: rate.period.saturating_sub(used) / t,
        reset: used,
        tat: new_tat,
    }
}

/// Nanoseconds as whole seconds, rounded up (SPEC §7: header values).
pub fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn run(rate: Rate, times: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let d = decide(now, tat, rate);
                tat = Some(d.tat);
                d.allowed
            })
            .collect()
    }

    #[test]
    fn a_full_quota_at_once_then_one_per_emission() {
        let rate = Rate {
            limit: 10,
            period: 10 * S,
        };
        let burst = run(rate, &[0; 11]);
        assert_eq!(burst.iter().filter(|a| **a).count(), 10);
        assert!(!burst[10]);
        let first = decide(0, None, rate);
        assert_eq!((first.remaining, ceil_secs(first.reset)), (9, 1));
    }

    #[test]
    fn no_double_burst_at_a_window_boundary() {
        // 10 per 10 s: 10 at 9.9 s and 10 more at 10.1 s would be 20 within 0.2 s in a fixed
        // window; GCRA lets through only what 0.2 s of refill gave back.
        let rate = Rate {
            limit: 10,
            period: 10 * S,
        };
        let mut tat = None;
        let mut allowed = 0;
        for now in [9_900_000_000u64; 10].into_iter().chain([10_100_000_000u64; 10]) {
            let d = decide(now, tat, rate);
            tat = Some(d.tat);
            allowed += d.allowed as u32;
        }
        assert_eq!(allowed, 10, "the second burst finds an empty bucket");
    }

    #[test]
    fn the_quota_comes_back_gradually() {
        let rate = Rate {
            limit: 10,
            period: 10 * S,
        };
        let mut tat = None;
        for _ in 0..10 {
            tat = Some(decide(0, tat, rate).tat);
        }
        let refused = decide(0, tat, rate);
        assert!(!refused.allowed);
        assert_eq!(
            ceil_secs(refused.reset),
            1,
            "one emission interval until the next request"
        );
        // After 3 s, exactly 3 requests are back.
        let mut allowed = 0;
        for _ in 0..5 {
            let d = decide(3 * S, tat, rate);
            tat = Some(d.tat);
            allowed += d.allowed as u32;
        }
        assert_eq!(allowed, 3);
    }

    #[test]
    fn a_late_burst_finds_no_fresh_window() {
        let rate = Rate {
            limit: 5,
            period: 60 * S,
        };
        let mut tat = None;
        for _ in 0..5 {
            tat = Some(decide(59 * S, tat, rate).tat);
        }
        // One second later a fixed window would start afresh; here 1 s gave back nothing yet.
        let d = decide(60 * S, tat, rate);
        assert!(!d.allowed);
        assert_eq!(ceil_secs(d.reset), 11, "the next request 12 s after the burst began");
    }

    #[test]
    fn reset_is_until_the_whole_quota_is_back_when_allowed() {
        let rate = Rate {
            limit: 100,
            period: 60 * S,
        };
        let mut d = decide(0, None, rate);
        for _ in 0..41 {
            d = decide(0, Some(d.tat), rate);
        }
        // 42 used: the quota is whole again after 42 × 0.6 s = 25.2 s → 26.
        assert_eq!((d.remaining, ceil_secs(d.reset)), (58, 26));
    }
}
