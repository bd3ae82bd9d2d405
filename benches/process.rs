//! One collection of the `process` collector over this machine's real `/proc`, with name-only
//! groups and with a command-line regex added. Both read `/proc/[pid]/stat` and, for a process
//! whose comm matches no name, `/proc/[pid]/cmdline` (for the argv[0] fallback), once per pid.
//!
//! `cargo bench --bench process`

use automon::collector::process::ProcessCollector;
use automon::collector::{Collector, HostPaths};
use automon::config::{PathsConfig, ProcessConfig, ProcessGroupConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn group(name: &str, comm: &[&str], cmdline: Option<&str>) -> ProcessGroupConfig {
    ProcessGroupConfig {
        name: name.into(),
        comm: comm.iter().map(|s| (*s).to_owned()).collect(),
        cmdline: cmdline.map(str::to_owned),
    }
}

fn bench(c: &mut Criterion) {
    let paths = HostPaths::from_config(&PathsConfig::default());
    let pids = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0);
    let by_name = ProcessConfig {
        enabled: true,
        groups: vec![
            group("sshd", &["sshd"], None),
            group("rust", &["cargo", "rustc"], None),
            group("shell", &["bash", "sh"], None),
            group("none", &["no-such-process"], None),
        ],
        ..Default::default()
    };
    let mut with_regex = by_name.clone();
    with_regex
        .groups
        .push(group("automon", &[], Some(r"automon(-\w+)? ")));
    for (label, cfg) in [("names", by_name), ("names+cmdline", with_regex)] {
        let mut collector =
            ProcessCollector::new(paths.clone(), &cfg).unwrap_or_else(|e| panic!("{e}"));
        c.bench_function(
            &format!(
                "process_collect/{label} ({} groups, {pids} pids)",
                cfg.groups.len()
            ),
            |b| b.iter(|| collector.collect().unwrap_or_else(|e| panic!("{e}"))),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
