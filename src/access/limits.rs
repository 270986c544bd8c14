//! Per-user limits: the tool-call quota (N calls, then a cooldown), a request rate per key
//! (token bucket) and a cap on runs in progress.
//!
//! State lives in sharded maps so one user's bookkeeping never waits on another's lock, and
//! idle entries are swept as the maps grow, so memory stays bounded by the callers active
//! within a window however many keys exist. Time comes from a [`Clock`], so tests move it
//! instead of sleeping through a cooldown.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Caller;
use crate::config::model::CallQuota;

/// Monotonic time for the limiter.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since some fixed origin.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(Mutex<Duration>);

impl ManualClock {
    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A limit was reached: which, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "tool call limit reached: {calls} calls per {window_s} s for user `{user}`; calls are refused for {retry_s} s more",
        window_s = window.as_secs(), retry_s = retry_after.as_secs().max(1)
    )]
    ToolCalls {
        user: String,
        calls: u32,
        window: Duration,
        retry_after: Duration,
    },
    #[error("request rate limit reached: {per_minute} requests per minute for this key; retry in {retry_s} s", retry_s = retry_after.as_secs().max(1))]
    Requests {
        per_minute: u32,
        retry_after: Duration,
    },
    #[error(
        "user `{user}` already has {max} runs in progress, the most its limits allow; retry when one ends"
    )]
    ConcurrentRuns { user: String, max: u32 },
}

impl Refused {
    /// When to try again (`Retry-After`), at least a second.
    pub fn retry_after(&self) -> Duration {
        match self {
            Refused::ToolCalls { retry_after, .. } | Refused::Requests { retry_after, .. } => {
                (*retry_after).max(Duration::from_secs(1))
            }
            Refused::ConcurrentRuns { .. } => Duration::from_secs(1),
        }
    }

    /// A stable name of the limit (`tool_calls`, `requests`, `concurrent_runs`).
    pub fn limit(&self) -> &'static str {
        match self {
            Refused::ToolCalls { .. } => "tool_calls",
            Refused::Requests { .. } => "requests",
            Refused::ConcurrentRuns { .. } => "concurrent_runs",
        }
    }
}

/// Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    tool_calls: Shards<Window>,
    requests: Shards<Bucket>,
    runs: Shards<u32>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock::default()))
    }
}

impl Limiter {
    /// A limiter reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock,
                tool_calls: Shards::default(),
                requests: Shards::default(),
                runs: Shards::default(),
            }),
        }
    }

    /// Count one tool call of `caller`'s user against its quota.
    ///
    /// # Errors
    /// [`Refused::ToolCalls`] while the user is cooling down.
    pub fn tool_call(&self, caller: &Caller) -> Result<(), Refused> {
        let Some(quota) = caller.limits().tool_calls else {
            return Ok(());
        };
        let now = self.inner.clock.now();
        let horizon = quota.window.max(quota.cooldown);
        self.inner
            .tool_calls
            .with(caller.user(), now, horizon, |window| {
                window.take(quota, now)
            })
            .map_err(|retry_after| Refused::ToolCalls {
                user: caller.user().to_owned(),
                calls: quota.calls,
                window: quota.window,
                retry_after,
            })
    }

    /// Count one request of `caller`'s key against its rate.
    ///
    /// # Errors
    /// [`Refused::Requests`] when the key's bucket is empty.
    pub fn request(&self, caller: &Caller) -> Result<(), Refused> {
        let Some(per_minute) = caller.limits().requests_per_minute else {
            return Ok(());
        };
        let now = self.inner.clock.now();
        let key = caller.key_id().unwrap_or(caller.user());
        self.inner
            .requests
            .with(key, now, Duration::from_secs(60), |bucket| {
                bucket.take(per_minute, now)
            })
            .map_err(|retry_after| Refused::Requests {
                per_minute,
                retry_after,
            })
    }

    /// Hold one of `caller`'s user's run slots until the returned guard is dropped.
    ///
    /// # Errors
    /// [`Refused::ConcurrentRuns`] when all are taken.
    pub fn start_run(&self, caller: &Caller) -> Result<RunSlot, Refused> {
        let Some(max) = caller.limits().concurrent_runs else {
            return Ok(RunSlot(None));
        };
        let now = self.inner.clock.now();
        self.inner
            .runs
            .with(caller.user(), now, Duration::ZERO, |running| {
                if *running >= max {
                    return Err(Duration::ZERO);
                }
                *running += 1;
                Ok(())
            })
            .map_err(|_| Refused::ConcurrentRuns {
                user: caller.user().to_owned(),
                max,
            })?;
        Ok(RunSlot(Some((self.clone(), caller.user().to_owned()))))
    }
}

/// A run slot; dropping it frees the slot.
pub struct RunSlot(Option<(Limiter, String)>);

impl Drop for RunSlot {
    fn drop(&mut self) {
        if let Some((limiter, user)) = self.0.take() {
            let now = limiter.inner.clock.now();
            let _ = limiter
                .inner
                .runs
                .with(&user, now, Duration::ZERO, |running| {
                    *running = running.saturating_sub(1);
                    Ok(())
                });
        }
    }
}

/// The tool-call quota of one user.
#[derive(Default)]
struct Window {
    started: Duration,
    calls: u32,
    cooling_until: Option<Duration>,
}

impl Window {
    fn take(&mut self, quota: CallQuota, now: Duration) -> Result<(), Duration> {
        if let Some(until) = self.cooling_until {
            if now < until {
                return Err(until - now);
            }
            self.cooling_until = None;
            self.calls = 0;
        }
        if self.calls == 0 || now >= self.started + quota.window {
            self.started = now;
            self.calls = 0;
        }
        self.calls += 1;
        if self.calls >= quota.calls {
            // This call is allowed; it is the last one until the cooldown is over.
            self.cooling_until = Some(now + quota.cooldown);
        }
        Ok(())
    }
}

/// A token bucket holding up to a minute's worth of requests.
struct Bucket {
    tokens: f64,
    at: Duration,
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            tokens: f64::NAN,
            at: Duration::ZERO,
        }
    }
}

impl Bucket {
    fn take(&mut self, per_minute: u32, now: Duration) -> Result<(), Duration> {
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        if self.tokens.is_nan() {
            self.tokens = capacity;
        } else {
            let elapsed = now.saturating_sub(self.at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(capacity);
        }
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }
}

/// Entries per shard above which idle ones are swept.
const SWEEP_ABOVE: usize = 1024;
const SHARDS: usize = 16;

/// A map from caller names to limit state, split into locks by hash.
struct Shards<T> {
    hasher: RandomState,
    shards: Vec<Mutex<Shard<T>>>,
}

struct Shard<T> {
    entries: HashMap<String, Entry<T>>,
    /// Size at which the next sweep happens (doubles when a sweep frees little).
    sweep_at: usize,
}

struct Entry<T> {
    state: T,
    /// Last use; an entry unused for longer than its horizon is back at its initial state.
    used: Duration,
    horizon: Duration,
}

impl<T> Default for Shards<T> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        sweep_at: SWEEP_ABOVE,
                    })
                })
                .collect(),
        }
    }
}

impl<T: Default + IsIdle> Shards<T> {
    /// Run `f` on `name`'s state (created fresh if absent), recording the use.
    fn with<R>(
        &self,
        name: &str,
        now: Duration,
        horizon: Duration,
        f: impl FnOnce(&mut T) -> Result<R, Duration>,
    ) -> Result<R, Duration> {
        let index = (self.hasher.hash_one(name) as usize) % SHARDS;
        let mut shard = self.shards[index].lock().unwrap_or_else(|p| p.into_inner());
        if !shard.entries.contains_key(name) && shard.entries.len() >= shard.sweep_at {
            shard.entries.retain(|_, e| {
                !(e.state.is_idle()
                    || now.saturating_sub(e.used) > e.horizon && e.horizon > Duration::ZERO)
            });
            let len = shard.entries.len();
            shard.sweep_at = (len * 2).max(SWEEP_ABOVE);
        }
        let entry = match shard.entries.get_mut(name) {
            Some(entry) => entry,
            None => shard.entries.entry(name.to_owned()).or_insert(Entry {
                state: T::default(),
                used: now,
                horizon,
            }),
        };
        entry.used = now;
        entry.horizon = horizon;
        f(&mut entry.state)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).entries.len())
            .sum()
    }
}

/// Whether a state is the same as a fresh one (and can be forgotten).
trait IsIdle {
    fn is_idle(&self) -> bool;
}

impl IsIdle for Window {
    fn is_idle(&self) -> bool {
        false
    }
}

impl IsIdle for Bucket {
    fn is_idle(&self) -> bool {
        false
    }
}

impl IsIdle for u32 {
    fn is_idle(&self) -> bool {
        *self == 0
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::access::Identity;
    use crate::config::model::{Limits, RoleConfig};

    fn caller(user: &str, limits: Limits) -> Caller {
        Caller::new(
            Identity {
                user: user.into(),
                key_id: Some(format!("key-{user}")),
            },
            Arc::new(RoleConfig::default_user()),
            limits,
            CancellationToken::new(),
        )
    }

    fn limiter() -> (Limiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (Limiter::new(clock.clone()), clock)
    }

    #[test]
    fn ten_calls_then_a_cooldown_then_calls_again() {
        let (limiter, clock) = limiter();
        let ann = caller("ann", RoleConfig::default_user().limits);
        let bob = caller("bob", RoleConfig::default_user().limits);
        for i in 0..10 {
            assert_eq!(limiter.tool_call(&ann), Ok(()), "call {}", i + 1);
            clock.advance(Duration::from_secs(1));
        }
        let refused = limiter.tool_call(&ann).unwrap_err();
        assert_eq!(refused.limit(), "tool_calls");
        // The 10th call was at t=9 s; the cooldown ends at 69 s, it is now 10 s.
        assert_eq!(refused.retry_after(), Duration::from_secs(59));
        assert!(
            refused.to_string().contains("10 calls per 60 s"),
            "{refused}"
        );
        // Another user is not affected.
        assert_eq!(limiter.tool_call(&bob), Ok(()));
        clock.advance(Duration::from_secs(58));
        assert!(
            limiter.tool_call(&ann).is_err(),
            "still cooling down at 68 s"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            limiter.tool_call(&ann),
            Ok(()),
            "first call after the cooldown"
        );
    }

    #[test]
    fn a_new_window_starts_after_a_quiet_one() {
        let (limiter, clock) = limiter();
        let ann = caller("ann", RoleConfig::default_user().limits);
        for _ in 0..9 {
            limiter.tool_call(&ann).unwrap();
        }
        clock.advance(Duration::from_secs(61));
        for _ in 0..9 {
            limiter.tool_call(&ann).unwrap();
        }
        assert_eq!(
            limiter.tool_call(&ann),
            Ok(()),
            "the 10th of the new window"
        );
        assert!(limiter.tool_call(&ann).is_err());
    }

    #[test]
    fn request_rate_refills_over_time() {
        let (limiter, clock) = limiter();
        let limits = Limits {
            requests_per_minute: Some(60),
            ..Limits::default()
        };
        let ann = caller("ann", limits);
        for _ in 0..60 {
            limiter.request(&ann).unwrap();
        }
        let refused = limiter.request(&ann).unwrap_err();
        assert_eq!(refused.retry_after(), Duration::from_secs(1));
        clock.advance(Duration::from_secs(2));
        limiter.request(&ann).unwrap();
        limiter.request(&ann).unwrap();
        assert!(limiter.request(&ann).is_err());
        // Unlimited callers are not counted at all.
        let admin = Caller::local();
        for _ in 0..1000 {
            limiter.request(&admin).unwrap();
        }
    }

    #[test]
    fn run_slots_are_freed_when_dropped() {
        let (limiter, _) = limiter();
        let limits = Limits {
            concurrent_runs: Some(2),
            ..Limits::default()
        };
        let ann = caller("ann", limits);
        let first = limiter.start_run(&ann).unwrap();
        let _second = limiter.start_run(&ann).unwrap();
        assert!(matches!(
            limiter.start_run(&ann),
            Err(Refused::ConcurrentRuns { max: 2, .. })
        ));
        drop(first);
        limiter.start_run(&ann).unwrap();
    }

    #[test]
    fn memory_stays_bounded_by_active_callers() {
        let (limiter, clock) = limiter();
        let limits = Limits {
            requests_per_minute: Some(10),
            ..Limits::default()
        };
        for i in 0..50_000 {
            limiter.request(&caller(&format!("u{i}"), limits)).unwrap();
            if i % 1000 == 999 {
                clock.advance(Duration::from_secs(61));
            }
        }
        let len = limiter.inner.requests.len();
        assert!(len < 2 * SHARDS * SWEEP_ABOVE, "{len} entries kept");
    }
}
