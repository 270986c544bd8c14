//! Closed-loop load: `concurrency` callers, each making one call after another, until a call
//! budget or a deadline runs out; per-call latencies and overall throughput.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a measurement stops.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Budget {
    /// This many calls in total, shared by all callers.
    Calls(u64),
    /// Every caller stops starting calls after this long.
    Time(Duration),
}

/// One measurement of one path at one concurrency.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) calls_per_sec: f64,
    pub(crate) calls: u64,
    /// CPU time per call (user + system) of the processes given to [`run`]: ours (clients and
    /// the in-process server) and the MCP server child that answered.
    pub(crate) cpu_per_call: Duration,
}

/// Run `call` from `concurrency` tasks until `budget` is spent, charging the CPU time of
/// `processes` to the calls. The first failed call ends the measurement with its error.
pub(crate) async fn run<F, Fut>(
    call: F,
    concurrency: usize,
    budget: Budget,
    processes: &[u32],
) -> anyhow::Result<Sample>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_time(processes);
    let begin = Instant::now();
    let deadline = match budget {
        Budget::Time(limit) => Some(begin + limit),
        Budget::Calls(_) => None,
    };
    let limit = match budget {
        Budget::Calls(n) => n,
        Budget::Time(_) => u64::MAX,
    };
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let call = call.clone();
        let started = started.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d)
                    || started.fetch_add(1, Ordering::Relaxed) >= limit
                {
                    break;
                }
                let t0 = Instant::now();
                call().await?;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let wall = begin.elapsed();
    let cpu = cpu_time(processes).saturating_sub(cpu_before);
    anyhow::ensure!(!latencies.is_empty(), "no call finished");
    latencies.sort_unstable();
    let calls = latencies.len() as u64;
    Ok(Sample {
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        calls_per_sec: calls as f64 / wall.as_secs_f64(),
        calls,
        cpu_per_call: cpu / u32::try_from(calls).unwrap_or(u32::MAX),
    })
}

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`; 100 on every Linux we run).
const TICKS_PER_SEC: u64 = 100;

/// User + system time so far of `pids` (all their threads), from `/proc/<pid>/stat`; a process
/// that cannot be read counts as zero. 10 ms resolution, so measure long enough.
pub(crate) fn cpu_time(pids: &[u32]) -> Duration {
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The command name may contain spaces; fields after it are space-separated.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ').skip(11); // utime is field 14 of the whole line
            let user: u64 = fields.next()?.parse().ok()?;
            let system: u64 = fields.next()?.parse().ok()?;
            Some(user + system)
        })
        .sum();
    Duration::from_millis(ticks * 1000 / TICKS_PER_SEC)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Per-field medians of several samples of the same measurement.
pub(crate) fn median(samples: &[Sample]) -> Sample {
    fn mid<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        values[values.len() / 2]
    }
    Sample {
        p50: mid(samples.iter().map(|s| s.p50).collect()),
        p99: mid(samples.iter().map(|s| s.p99).collect()),
        calls_per_sec: mid(samples.iter().map(|s| s.calls_per_sec).collect()),
        calls: samples.iter().map(|s| s.calls).sum(),
        cpu_per_call: mid(samples.iter().map(|s| s.cpu_per_call).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&values, 50), Duration::from_micros(50));
        assert_eq!(percentile(&values, 99), Duration::from_micros(99));
        assert_eq!(percentile(&values[..1], 99), Duration::from_micros(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_budget_is_exact() {
        let sample = run(|| async { anyhow::Ok(()) }, 8, Budget::Calls(1000), &[])
            .await
            .expect("sample");
        assert_eq!(sample.calls, 1000);
    }

    #[test]
    fn our_own_cpu_time_is_readable() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(0);
        }
        assert!(cpu_time(&[std::process::id()]) > Duration::ZERO);
    }
}
