//! `process_*`: the process's memory, CPU time, open files and start time, as Prometheus names them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The standard `process_*` metrics, read from `/proc/self` when rendered (Linux; elsewhere
/// they stay 0).
pub(super) struct ProcessMetrics {
    resident: Gauge,
    virtual_memory: Gauge,
    cpu: Counter<f64, std::sync::atomic::AtomicU64>,
    open_fds: Gauge,
    start_time: Gauge,
}

impl ProcessMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            resident: Gauge::default(),
            virtual_memory: Gauge::default(),
            cpu: Counter::default(),
            open_fds: Gauge::default(),
            start_time: Gauge::default(),
        };
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            m.resident.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            m.virtual_memory.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            m.cpu.clone(),
        );
        registry.register(
            "process_open_fds",
            "Number of open file descriptors",
            m.open_fds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            m.start_time.clone(),
        );
        m
    }

    /// Linux's clock ticks per second and page size, as every mainstream kernel configures them.
    const TICKS: f64 = 100.0;
    const PAGE: i64 = 4096;

    pub(super) fn refresh(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // man proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 (1-based, from pid);
        // here 0-based from the state field (3).
        let cpu = (field(11) + field(12)) / Self::TICKS;
        let before = self.cpu.get();
        if cpu > before {
            self.cpu.inc_by(cpu - before);
        }
        self.virtual_memory.set(field(20) as i64);
        self.resident.set(field(21) as i64 * Self::PAGE);
        if let Some(boot) = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))
        }) {
            self.start_time.set((boot + field(19) / Self::TICKS) as i64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }
}
