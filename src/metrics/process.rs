//! The standard `process_*` metrics (the names every Prometheus client library exports), read
//! from `/proc/self` at each scrape. On a system without `/proc` they are left out.

use std::sync::OnceLock;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

/// The collector registered at the registry's root (no `vcm_` prefix).
#[derive(Debug, Default)]
pub(super) struct Process;

/// What `/proc/self` says now.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Figures {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(f) = read() else {
            return Ok(());
        };
        let counter = |encoder: &mut DescriptorEncoder, name, help, v: f64| {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v).encode(metric)
        };
        let gauge = |encoder: &mut DescriptorEncoder, name, help, v: f64| {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(metric)
        };
        #[allow(clippy::cast_precision_loss)]
        let n = |v: u64| v as f64;
        counter(
            &mut encoder,
            "process_cpu_seconds",
            "User and system CPU time spent, seconds",
            f.cpu_seconds,
        )?;
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size, bytes",
            n(f.resident_bytes),
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size, bytes",
            n(f.virtual_bytes),
        )?;
        gauge(&mut encoder, "process_threads", "OS threads", n(f.threads))?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, seconds",
            f.start_time_seconds,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors",
            n(f.open_fds),
        )?;
        if let Some(max) = f.max_fds {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Most file descriptors the process may open",
                n(max),
            )?;
        }
        Ok(())
    }
}

/// Clock ticks per second and page size, and the boot time: fixed for the process's life.
struct Constants {
    ticks: f64,
    page: u64,
    boot_secs: f64,
}

fn constants() -> Option<&'static Constants> {
    static CONSTANTS: OnceLock<Option<Constants>> = OnceLock::new();
    CONSTANTS
        .get_or_init(|| {
            use nix::unistd::{SysconfVar, sysconf};
            let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten()?;
            let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten()?;
            let stat = std::fs::read_to_string("/proc/stat").ok()?;
            let boot_secs = stat
                .lines()
                .find_map(|l| l.strip_prefix("btime "))?
                .trim()
                .parse::<u64>()
                .ok()?;
            #[allow(clippy::cast_precision_loss)]
            Some(Constants {
                ticks: ticks as f64,
                page: u64::try_from(page).ok()?,
                boot_secs: boot_secs as f64,
            })
        })
        .as_ref()
}

/// CPU seconds and resident bytes of process `pid`, or `None` when it is gone (or there is no
/// `/proc`).
pub fn of_pid(pid: u32) -> Option<(f64, u64)> {
    let c = constants()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = parse_stat(&stat, c.ticks, c.page, c.boot_secs)?;
    Some((f.cpu_seconds, f.resident_bytes))
}

/// The figures, or `None` without `/proc`.
pub(super) fn read() -> Option<Figures> {
    let c = constants()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut f = parse_stat(&stat, c.ticks, c.page, c.boot_secs)?;
    f.open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    f.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_fds(&l));
    Some(f)
}

/// `/proc/self/stat`: the command (field 2) is in parentheses and may hold spaces, so fields
/// are counted from the last `)`.
fn parse_stat(stat: &str, ticks: f64, page: u64, boot_secs: f64) -> Option<Figures> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // NB: `after` starts at field 3 (state), so field N is at index N - 3.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    #[allow(clippy::cast_precision_loss)]
    Some(Figures {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        threads: field(20)?,
        start_time_seconds: boot_secs + field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
        open_fds: 0,
        max_fds: None,
    })
}

/// The soft limit of "Max open files" in `/proc/self/limits`; `None` when unlimited.
fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command() {
        // A command with spaces and a parenthesis, as `/proc/<pid>/stat` prints it.
        let stat = "4242 (vcm (worker) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 \
                    7 0 1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 \
                    0 0 0";
        let f = parse_stat(stat, 100.0, 4096, 1_700_000_000.0).expect("parses");
        assert_eq!(
            f,
            Figures {
                cpu_seconds: 3.0,
                resident_bytes: 300 * 4096,
                virtual_bytes: 123_456_789,
                threads: 7,
                start_time_seconds: 1_700_000_010.0,
                open_fds: 0,
                max_fds: None,
            }
        );
    }

    #[test]
    fn max_open_files_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
    }

    #[test]
    fn this_process_has_figures() {
        let f = read().expect("/proc is mounted on the machines vcm runs on");
        assert!(
            f.threads >= 1 && f.resident_bytes > 0 && f.open_fds >= 3,
            "{f:?}"
        );
        assert!(f.start_time_seconds > 1_600_000_000.0, "{f:?}");
    }
}
