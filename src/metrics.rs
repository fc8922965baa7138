//! Prometheus metrics: requests by route pattern (never the raw path) and status, their
//! latency, live connections and lessons, check-in outcomes, password hashing, and the
//! database pool.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    checkins: IntCounterVec,
    settled: IntCounterVec,
    connections: IntGauge,
    live_lessons: IntGauge,
    pool: IntGaugeVec,
    hashes: IntGaugeVec,
}

/// The gauges read when metrics are scraped.
pub struct Gauges {
    pub connections: i64,
    pub live_lessons: usize,
    pub pool: diesel::r2d2::State,
    pub hashes_running: usize,
    pub hashes_queued: usize,
}

/// How a check-in attempt ended, as counted in `rollcall_checkins_total{result}`.
#[derive(Debug, Clone, Copy)]
pub enum CheckinOutcome {
    Accepted,
    Repeated,
    InvalidCode,
    CodeExpired,
    Throttled,
}

impl CheckinOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Repeated => "repeated",
            Self::InvalidCode => "invalid_code",
            Self::CodeExpired => "code_expired",
            Self::Throttled => "throttled",
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route pattern and status"),
            &["method", "route", "status"],
        )
        .expect("unwrap: valid metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method, route pattern and status",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route", "status"],
        )
        .expect("unwrap: valid metric definition");
        let checkins = IntCounterVec::new(
            Opts::new(
                "rollcall_checkins_total",
                "Check-in attempts by result (accepted, repeated, invalid_code, code_expired, throttled)",
            ),
            &["result"],
        )
        .expect("unwrap: valid metric definition");
        let settled = IntCounterVec::new(
            Opts::new(
                "rollcall_checkins_settled_total",
                "Check-in attempts by how they were settled: direct (a right code stored by one \
                 statement, its window found by the code) or read (the students and their windows \
                 read first)",
            ),
            &["path"],
        )
        .expect("unwrap: valid metric definition");
        let connections =
            IntGauge::new("rollcall_websocket_connections", "Open live-stream WebSocket connections")
                .expect("unwrap: valid metric definition");
        let live_lessons = IntGauge::new(
            "rollcall_live_lessons",
            "Lessons with at least one live subscriber on this instance",
        )
        .expect("unwrap: valid metric definition");
        let pool = IntGaugeVec::new(
            Opts::new("rollcall_db_pool_connections", "Database pool connections by state (in_use, idle)"),
            &["state"],
        )
        .expect("unwrap: valid metric definition");
        let hashes = IntGaugeVec::new(
            Opts::new(
                "rollcall_password_hashes",
                "Password hashes by state (running, queued) on the bounded hashing executor",
            ),
            &["state"],
        )
        .expect("unwrap: valid metric definition");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(checkins.clone()),
            Box::new(settled.clone()),
            Box::new(connections.clone()),
            Box::new(live_lessons.clone()),
            Box::new(pool.clone()),
            Box::new(hashes.clone()),
        ] {
            registry.register(collector).expect("unwrap: each metric is registered once");
        }
        for result in [
            CheckinOutcome::Accepted,
            CheckinOutcome::Repeated,
            CheckinOutcome::InvalidCode,
            CheckinOutcome::CodeExpired,
            CheckinOutcome::Throttled,
        ] {
            checkins.with_label_values(&[result.label()]);
        }
        for path in ["direct", "read"] {
            settled.with_label_values(&[path]);
        }
        Self { registry, requests, latency, checkins, settled, connections, live_lessons, pool, hashes }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    pub fn count_checkin(&self, result: CheckinOutcome) {
        self.checkins.with_label_values(&[result.label()]).inc();
    }

    /// A batch settled `direct` attempts by one statement and `read` the full way.
    pub fn checkins_settled(&self, direct: usize, read: usize) {
        self.settled.with_label_values(&["direct"]).inc_by(direct as u64);
        self.settled.with_label_values(&["read"]).inc_by(read as u64);
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, gauges: Gauges) -> String {
        let Gauges { connections, live_lessons, pool, hashes_running, hashes_queued } = gauges;
        self.connections.set(connections);
        self.live_lessons.set(live_lessons as i64);
        self.hashes.with_label_values(&["running"]).set(hashes_running as i64);
        self.hashes.with_label_values(&["queued"]).set(hashes_queued as i64);
        self.pool.with_label_values(&["idle"]).set(i64::from(pool.idle_connections));
        self.pool.with_label_values(&["in_use"]).set(i64::from(pool.connections - pool.idle_connections));
        let mut out = Vec::new();
        // unwrap: the text encoder only fails on I/O, and this writes to memory.
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("metrics encode");
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
