//! `diskstats` collector: per-device I/O counters from `/proc/diskstats` under node_exporter's
//! `node_disk_*` names and base units, plus `node_disk_info` from sysfs and the udev database.
//!
//! Also home of [`DeviceFilter`], the exclude/include regex pair that `netdev` shares.

use std::path::Path;

use super::filter::NameFilter;
use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::config::{DiskstatsConfig, DEFAULT_DISK_EXCLUDE};
use crate::model::{Family, MetricKind};

/// Which devices a collector reports: a device is skipped when it matches `exclude`, or when
/// `include` is set and it does not match.
#[derive(Debug, Clone)]
pub struct DeviceFilter {
    exclude: Option<NameFilter>,
    include: Option<NameFilter>,
}

impl DeviceFilter {
    /// Compiles the two patterns. An empty `exclude` means "exclude nothing" (an empty regex
    /// would match every name). `key` names the config table in error messages, e.g.
    /// `collectors.netdev`.
    pub fn new(key: &str, exclude: &str, include: Option<&str>) -> Result<Self, CollectorError> {
        let compile = |field: &str, re: &str| {
            NameFilter::new(re).map_err(|e| {
                CollectorError::Other(format!("{key}.{field}: invalid regex {re:?}: {e}"))
            })
        };
        let exclude = match exclude {
            "" => None,
            re => Some(compile("device_exclude", re)?),
        };
        let include = match include {
            None => None,
            Some(re) => Some(compile("device_include", re)?),
        };
        Ok(DeviceFilter { exclude, include })
    }

    /// Whether `device` is left out.
    pub fn ignored(&self, device: &str) -> bool {
        if self.exclude.as_ref().is_some_and(|re| re.is_match(device)) {
            return true;
        }
        self.include.as_ref().is_some_and(|re| !re.is_match(device))
    }
}

/// One line of `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStat {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Kernel device name (`sda`, `nvme0n1`, `dm-0`).
    pub device: String,
    /// The statistics after the name, in kernel order: 11 fields before 4.18, 15 with the
    /// discard fields (4.18+), 17 with the flush fields (5.5+). Never more than 17.
    pub values: Vec<u64>,
}

/// Reads older than this (`major minor name` plus 11 values) are partition lines of 2.6.x
/// kernels with only four counters; node_exporter (via procfs) skips them too.
const MIN_FIELDS: usize = 14;
/// 3 identifying fields + 17 statistics (Linux 5.5+). Later kernels may append more; they are
/// ignored until we know what they mean.
const MAX_FIELDS: usize = 20;

/// Parses `/proc/diskstats`. Lines with fewer than 14 fields are skipped (see [`MIN_FIELDS`]);
/// a line whose numbers do not parse is an error naming the line, because it means the file
/// is not what we think it is.
pub fn parse_diskstats(s: &str) -> Result<Vec<DiskStat>, String> {
    let mut out = Vec::new();
    for (i, line) in s.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < MIN_FIELDS {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what} in {line:?}", i + 1);
        let major = fields[0].parse().map_err(|_| bad("invalid major number"))?;
        let minor = fields[1].parse().map_err(|_| bad("invalid minor number"))?;
        let values = fields[3..fields.len().min(MAX_FIELDS)]
            .iter()
            .map(|v| v.parse::<u64>())
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| bad("invalid counter"))?;
        out.push(DiskStat {
            major,
            minor,
            device: fields[2].to_owned(),
            values,
        });
    }
    Ok(out)
}

/// Unit conversion applied to a raw diskstats value.
#[derive(Clone, Copy)]
enum Unit {
    /// Reported as is.
    Count,
    /// 512-byte sectors to bytes: the kernel always counts "standard UNIX 512-byte sectors",
    /// whatever the device's block size (Documentation/admin-guide/iostats.rst).
    Sectors,
    /// Milliseconds to seconds.
    Millis,
}

impl Unit {
    fn apply(self, v: u64) -> f64 {
        let v = v as f64;
        match self {
            Unit::Count => v,
            Unit::Sectors => v * 512.0,
            // Divide rather than multiply by 0.001 so 28044 ms is exactly the double for 28.044.
            Unit::Millis => v / 1000.0,
        }
    }
}

/// The statistics columns in kernel order: name, help (node_exporter's wording), type, unit.
const COLUMNS: [(&str, &str, MetricKind, Unit); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        MetricKind::Counter,
        Unit::Sectors,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        MetricKind::Counter,
        Unit::Millis,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        MetricKind::Counter,
        Unit::Sectors,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        MetricKind::Counter,
        Unit::Millis,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        MetricKind::Gauge,
        Unit::Count,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        MetricKind::Counter,
        Unit::Millis,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        MetricKind::Counter,
        Unit::Millis,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        // Sectors, not bytes: node_exporter's name and unit, kept for compatibility.
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        MetricKind::Counter,
        Unit::Millis,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        MetricKind::Counter,
        Unit::Count,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        MetricKind::Counter,
        Unit::Millis,
    ),
];

/// Parses a udev database entry (`/run/udev/data/b<major>:<minor>`) into its `E:` device
/// properties, in file order.
pub fn parse_udev_properties(s: &str) -> Vec<(String, String)> {
    s.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Reads `/proc/diskstats`, filtered by `device_exclude`/`device_include`.
pub struct DiskstatsCollector {
    paths: HostPaths,
    filter: DeviceFilter,
}

impl DiskstatsCollector {
    /// A collector reading under `paths`. Fails if a regex in `cfg` does not compile.
    ///
    /// Like node_exporter, setting `device_include` while leaving `device_exclude` at its
    /// default turns the default exclusion off: otherwise asking for `sda1` explicitly would
    /// silently report nothing, because the default excludes partitions. If both are changed,
    /// both apply.
    pub fn new(paths: HostPaths, cfg: &DiskstatsConfig) -> Result<Self, CollectorError> {
        let exclude = match cfg.device_include {
            Some(_) if cfg.device_exclude == DEFAULT_DISK_EXCLUDE => "",
            _ => cfg.device_exclude.as_str(),
        };
        let filter = DeviceFilter::new(
            "collectors.diskstats",
            exclude,
            cfg.device_include.as_deref(),
        )?;
        Ok(DiskstatsCollector { paths, filter })
    }

    /// `node_disk_info` labels that come from outside `/proc/diskstats`. Every source is
    /// optional: a missing udev database (containers, systems without udev) or queue
    /// directory leaves the label empty rather than failing the collection.
    fn info_labels(&self, d: &DiskStat) -> Vec<(&'static str, String)> {
        let udev_path = self.paths.root(Path::new(&format!(
            "/run/udev/data/b{}:{}",
            d.major, d.minor
        )));
        let udev = std::fs::read_to_string(udev_path)
            .map(|s| parse_udev_properties(&s))
            .unwrap_or_default();
        let prop = |k: &str| {
            udev.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        // The serial printed on the label first, as node_exporter does; virtio disks only
        // have ID_SERIAL.
        let serial = ["SCSI_IDENT_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"]
            .iter()
            .map(|k| prop(k))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        // node_exporter prints "0" when the queue attributes are unreadable; do the same so
        // the label set matches.
        let rotational = self
            .paths
            .read_sys(&format!("block/{}/queue/rotational", d.device))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .to_string();
        vec![
            ("major", d.major.to_string()),
            ("minor", d.minor.to_string()),
            ("path", prop("ID_PATH")),
            ("wwn", prop("ID_WWN")),
            ("model", prop("ID_MODEL")),
            ("serial", serial),
            ("revision", prop("ID_REVISION")),
            ("rotational", rotational),
        ]
    }
}

impl Collector for DiskstatsCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("diskstats");
        let text = super::read_to_string(&path)?;
        let stats = parse_diskstats(&text).map_err(|m| parse_error(&path, m))?;

        let mut info = Family::gauge("node_disk_info", "Info of /sys/block/<block_device>.");
        let mut columns: Vec<Family> = COLUMNS
            .iter()
            .map(|(name, help, kind, _)| Family::new(*name, *help, *kind))
            .collect();
        for d in stats.iter().filter(|d| !self.filter.ignored(&d.device)) {
            let extra = self.info_labels(d);
            let mut labels: Vec<(&str, &str)> = vec![("device", &d.device)];
            labels.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
            info.push(&labels, 1.0);
            // Older kernels have fewer columns: only the ones present are reported.
            for ((family, (_, _, _, unit)), v) in columns.iter_mut().zip(COLUMNS).zip(&d.values) {
                family.push(&[("device", &d.device)], unit.apply(*v));
            }
        }
        let mut families = vec![info];
        families.extend(columns);
        families.retain(|f| !f.samples.is_empty());
        Ok(families.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    /// Captured from this project's build machine (kernel 6.18): 20 fields per line.
    const REAL: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 35336 6173 4154066 28044 10314 30725 9713400 67605 0 12568 96477 4343 36 238712 755 1049 72
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
";

    fn value(c: &Collection, name: &str, device: &str) -> Option<f64> {
        let fam = c.families.iter().find(|f| f.name == name)?;
        fam.samples
            .iter()
            .find(|s| s.labels.iter().any(|(k, v)| k == "device" && v == device))
            .map(|s| s.value)
    }

    #[test]
    fn parses_real_diskstats() {
        let stats = parse_diskstats(REAL).unwrap();
        assert_eq!(stats.len(), 4);
        let vda = &stats[2];
        assert_eq!((vda.major, vda.minor, vda.device.as_str()), (254, 0, "vda"));
        assert_eq!(
            vda.values,
            vec![
                35336, 6173, 4154066, 28044, 10314, 30725, 9713400, 67605, 0, 12568, 96477, 4343,
                36, 238712, 755, 1049, 72
            ]
        );
    }

    #[test]
    fn accepts_older_kernel_layouts_and_skips_short_lines() {
        // 4.17 (14 fields), 4.18 (18 fields), a 2.6 partition line (7 fields, skipped) and a
        // hypothetical future kernel with 21 fields (the extra one ignored).
        let s = "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n\
                 8       0 sdb 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n\
                 8       1 sda1 1 2 3 4\n\
                 8      16 sdc 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\n";
        let stats = parse_diskstats(s).unwrap();
        let lens: Vec<(&str, usize)> = stats
            .iter()
            .map(|d| (d.device.as_str(), d.values.len()))
            .collect();
        assert_eq!(lens, vec![("sda", 11), ("sdb", 15), ("sdc", 17)]);
    }

    #[test]
    fn rejects_malformed_numbers() {
        let err = parse_diskstats("8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        assert!(parse_diskstats("8 zero sda 1 2 3 4 5 6 7 8 9 10 11\n").is_err());
        assert!(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 -11\n").is_err());
        // Empty input and blank lines are not errors: no devices at all is a valid state.
        assert_eq!(parse_diskstats("").unwrap(), vec![]);
        assert_eq!(parse_diskstats("\n  \n").unwrap(), vec![]);
    }

    #[test]
    fn parses_udev_properties() {
        let props = parse_udev_properties(
            "S:disk/by-id/x\nE:ID_MODEL=Samsung SSD\nE:ID_WWN=0x5\nE:broken\n",
        );
        assert_eq!(
            props,
            vec![
                ("ID_MODEL".to_owned(), "Samsung SSD".to_owned()),
                ("ID_WWN".to_owned(), "0x5".to_owned())
            ]
        );
    }

    #[test]
    fn filter_semantics() {
        let f = DeviceFilter::new("t", DEFAULT_DISK_EXCLUDE, None).unwrap();
        for d in [
            "loop0",
            "ram1",
            "zram0",
            "sda1",
            "vda2",
            "xvdb3",
            "nvme0n1p1",
            "fd0",
        ] {
            assert!(f.ignored(d), "{d} should be excluded");
        }
        for d in ["sda", "vda", "nvme0n1", "dm-0", "md0", "mmcblk0"] {
            assert!(!f.ignored(d), "{d} should be kept");
        }
        let f = DeviceFilter::new("t", "", Some("^sd")).unwrap();
        assert!(!f.ignored("sda1") && f.ignored("vda"));
        let f = DeviceFilter::new("t", "", None).unwrap();
        assert!(!f.ignored("anything"));
    }

    #[test]
    fn invalid_regex_is_a_clear_error() {
        let cfg = DiskstatsConfig {
            device_exclude: "(".into(),
            ..DiskstatsConfig::default()
        };
        let err = DiskstatsCollector::new(fixture_paths(), &cfg)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("collectors.diskstats.device_exclude: invalid regex \"(\""),
            "{err}"
        );
        let cfg = DiskstatsConfig {
            device_include: Some("[".into()),
            ..DiskstatsConfig::default()
        };
        let err = DiskstatsCollector::new(fixture_paths(), &cfg)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("device_include"), "{err}");
    }

    #[test]
    fn include_replaces_the_default_exclude() {
        let cfg = DiskstatsConfig {
            device_include: Some("^loop0$".into()),
            ..DiskstatsConfig::default()
        };
        let mut c = DiskstatsCollector::new(fixture_paths(), &cfg).unwrap();
        let out = c.collect().unwrap();
        assert_eq!(
            value(&out, "node_disk_reads_completed_total", "loop0"),
            Some(0.0)
        );
        assert_eq!(value(&out, "node_disk_reads_completed_total", "vda"), None);
    }

    #[test]
    fn collects_fixture_with_units() {
        let mut c = DiskstatsCollector::new(fixture_paths(), &DiskstatsConfig::default()).unwrap();
        let out = c.collect().unwrap();
        // The fixture is this machine's /proc/diskstats: vda is the only device the default
        // exclusion keeps (loopN and zram0 are dropped).
        let expect = [
            ("node_disk_reads_completed_total", 54502.0),
            ("node_disk_reads_merged_total", 6824.0),
            ("node_disk_read_bytes_total", 5640370.0 * 512.0),
            ("node_disk_read_time_seconds_total", 83.392),
            ("node_disk_writes_completed_total", 10702.0),
            ("node_disk_writes_merged_total", 32451.0),
            ("node_disk_written_bytes_total", 9870152.0 * 512.0),
            ("node_disk_write_time_seconds_total", 68.324),
            ("node_disk_io_now", 0.0),
            ("node_disk_io_time_seconds_total", 14.884),
            ("node_disk_io_time_weighted_seconds_total", 152.601),
            ("node_disk_discards_completed_total", 4557.0),
            ("node_disk_discards_merged_total", 36.0),
            ("node_disk_discarded_sectors_total", 241040.0),
            ("node_disk_discard_time_seconds_total", 0.812),
            ("node_disk_flush_requests_total", 1061.0),
            ("node_disk_flush_requests_time_seconds_total", 0.073),
        ];
        for (name, v) in expect {
            assert_eq!(value(&out, name, "vda"), Some(v), "{name}");
        }
        for f in &out.families {
            assert_eq!(f.samples.len(), 1, "{} should only have vda", f.name);
            let want = if f.name == "node_disk_io_now" || f.name == "node_disk_info" {
                MetricKind::Gauge
            } else {
                MetricKind::Counter
            };
            assert_eq!(f.kind, want, "{}", f.name);
        }
        let info = out
            .families
            .iter()
            .find(|f| f.name == "node_disk_info")
            .unwrap();
        let labels: Vec<(&str, &str)> = info.samples[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("device", "vda"),
                ("major", "254"),
                ("minor", "0"),
                ("model", ""),
                ("path", "pci-0000:00:05.0"),
                ("revision", ""),
                ("rotational", "1"),
                ("serial", "automon-root-01"),
                ("wwn", ""),
            ]
        );
        assert_eq!(out.families.len(), 18);
    }

    #[test]
    fn fourteen_field_kernel_reports_only_the_classic_columns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("diskstats"),
            "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
        )
        .unwrap();
        let paths = HostPaths {
            procfs: dir.path().to_owned(),
            sysfs: dir.path().join("sys"),
            rootfs: dir.path().to_owned(),
        };
        let mut c = DiskstatsCollector::new(paths, &DiskstatsConfig::default()).unwrap();
        let out = c.collect().unwrap();
        // node_disk_info + the 11 classic columns; no discard or flush families.
        assert_eq!(out.families.len(), 12);
        assert_eq!(
            value(&out, "node_disk_read_bytes_total", "sda"),
            Some(1536.0)
        );
        assert_eq!(
            value(&out, "node_disk_discards_completed_total", "sda"),
            None
        );
    }
}
