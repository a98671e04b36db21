//! Counters behind `/metrics` (Prometheus text format 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::LogCounts;

/// Process-wide counters of one [`crate::Server`].
#[derive(Debug, Default)]
pub struct Metrics {
    /// POSTs received on the webhook path.
    pub deliveries: AtomicU64,
    /// Deliveries whose signature verified.
    pub verified: AtomicU64,
    /// Deliveries rejected for a missing or wrong signature.
    pub rejected_signature: AtomicU64,
    /// Deliveries rejected for exceeding the body limit.
    pub rejected_too_large: AtomicU64,
    /// Signed deliveries that could not be parsed (dead-lettered).
    pub dead_letters: AtomicU64,
    /// Deliveries the store failed to record (answered 500).
    pub store_errors: AtomicU64,
    /// Events newly inserted into the log.
    pub events_inserted: AtomicU64,
    /// Events dropped as duplicates of ones already logged.
    pub dedup_hits: AtomicU64,
    /// Events of a kind this version does not know.
    pub unknown_kinds: AtomicU64,
    /// Events processed.
    pub processed: AtomicU64,
    /// Processing failures.
    pub processing_errors: AtomicU64,
    /// Sum of processing lag (receive to processed), in microseconds.
    pub lag_micros_sum: AtomicU64,
    /// Largest processing lag seen, in microseconds.
    pub lag_micros_max: AtomicU64,
    /// Events that the forward hook gave up on.
    pub forward_failures: AtomicU64,
    /// Group commits made by the writer.
    pub commits: AtomicU64,
    /// Time workers waited for a busy receiver before processing, in
    /// microseconds (summed over workers).
    pub deferred_micros: AtomicU64,
}

fn line(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the lag of one processed event.
    pub fn observe_lag(&self, micros: u64) {
        self.lag_micros_sum.fetch_add(micros, Ordering::Relaxed);
        self.lag_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the store's counts when available.
    #[must_use]
    pub fn render(&self, counts: Option<LogCounts>) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        line(
            &mut out,
            "igdm_webhook_deliveries_total",
            "counter",
            "Webhook POSTs received.",
            g(&self.deliveries),
        );
        line(
            &mut out,
            "igdm_webhook_verified_total",
            "counter",
            "Deliveries with a valid signature.",
            g(&self.verified),
        );
        let _ = writeln!(
            out,
            "# HELP igdm_webhook_rejected_total Deliveries rejected, by reason.\n# TYPE igdm_webhook_rejected_total counter\n\
             igdm_webhook_rejected_total{{reason=\"signature\"}} {}\nigdm_webhook_rejected_total{{reason=\"too_large\"}} {}",
            g(&self.rejected_signature),
            g(&self.rejected_too_large)
        );
        line(
            &mut out,
            "igdm_webhook_dead_letters_total",
            "counter",
            "Signed deliveries that could not be parsed.",
            g(&self.dead_letters),
        );
        line(
            &mut out,
            "igdm_webhook_store_errors_total",
            "counter",
            "Deliveries the store failed to record.",
            g(&self.store_errors),
        );
        line(
            &mut out,
            "igdm_webhook_events_inserted_total",
            "counter",
            "Events newly logged.",
            g(&self.events_inserted),
        );
        line(
            &mut out,
            "igdm_webhook_dedup_hits_total",
            "counter",
            "Events already logged (duplicates).",
            g(&self.dedup_hits),
        );
        line(
            &mut out,
            "igdm_webhook_unknown_kinds_total",
            "counter",
            "Events of an unknown kind (stored raw).",
            g(&self.unknown_kinds),
        );
        line(
            &mut out,
            "igdm_webhook_events_processed_total",
            "counter",
            "Events processed.",
            g(&self.processed),
        );
        line(
            &mut out,
            "igdm_webhook_processing_errors_total",
            "counter",
            "Processing failures.",
            g(&self.processing_errors),
        );
        line(
            &mut out,
            "igdm_webhook_forward_failures_total",
            "counter",
            "Events the forward hook gave up on.",
            g(&self.forward_failures),
        );
        line(
            &mut out,
            "igdm_webhook_commits_total",
            "counter",
            "Group commits of deliveries.",
            g(&self.commits),
        );
        #[allow(clippy::cast_precision_loss)]
        let secs = |us: u64| us as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP igdm_webhook_processing_lag_seconds Time from receipt to processing.\n# TYPE igdm_webhook_processing_lag_seconds summary\n\
             igdm_webhook_processing_lag_seconds_sum {}\nigdm_webhook_processing_lag_seconds_count {}",
            secs(g(&self.lag_micros_sum)),
            g(&self.processed)
        );
        let _ = writeln!(
            out,
            "# HELP igdm_webhook_processing_deferred_seconds_total Time workers waited for a busy receiver.\n# TYPE igdm_webhook_processing_deferred_seconds_total counter\n\
             igdm_webhook_processing_deferred_seconds_total {}",
            secs(g(&self.deferred_micros))
        );
        let _ = writeln!(
            out,
            "# HELP igdm_webhook_processing_lag_max_seconds Largest processing lag seen.\n# TYPE igdm_webhook_processing_lag_max_seconds gauge\n\
             igdm_webhook_processing_lag_max_seconds {}",
            secs(g(&self.lag_micros_max))
        );
        if let Some(c) = counts {
            line(
                &mut out,
                "igdm_webhook_events_pending",
                "gauge",
                "Events waiting in the log.",
                c.pending,
            );
            line(
                &mut out,
                "igdm_webhook_events_failed",
                "gauge",
                "Events that failed for good.",
                c.failed,
            );
            line(
                &mut out,
                "igdm_webhook_dead_letters",
                "gauge",
                "Deliveries in the dead-letter table.",
                c.dead_letters,
            );
            line(
                &mut out,
                "igdm_webhook_deliveries_unexpanded",
                "gauge",
                "Deliveries stored but not yet expanded into events.",
                c.unexpanded,
            );
        }
        out
    }
}
