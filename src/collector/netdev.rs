//! `netdev` collector: per-interface traffic counters from `/proc/net/dev`
//! (`node_network_{receive,transmit}_*_total`) and the interface properties node_exporter's
//! `netclass` collector reads from `/sys/class/net/<dev>/` (`node_network_up`,
//! `node_network_info`, `node_network_mtu_bytes`, `node_network_speed_bytes`, ...).
//!
//! Many sysfs attributes answer `EINVAL` for virtual or down interfaces (`speed` and `duplex`
//! on `lo`, `carrier` on an administratively down link), so every attribute is optional: an
//! unreadable file drops that one sample, never the device or the collection.

use std::path::Path;

use super::diskstats::DeviceFilter;
use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::config::NetdevConfig;
use crate::model::{Family, MetricKind};

/// One interface's counters from `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevStats {
    /// Interface name.
    pub device: String,
    /// `(field, value)` pairs named as node_exporter names them before adding `_total`:
    /// `receive_bytes`, ..., `transmit_compressed`, in file order.
    pub counters: Vec<(String, u64)>,
}

/// Parses `/proc/net/dev`. Field names are taken from the second header line (as
/// node_exporter does) rather than hard-coded, so a kernel that adds a column yields a new
/// metric instead of shifted values.
pub fn parse_net_dev(s: &str) -> Result<Vec<NetDevStats>, String> {
    let mut lines = s.lines();
    let _title = lines.next();
    let header = lines.next().ok_or("missing header lines")?;
    let parts: Vec<&str> = header.split('|').collect();
    if parts.len() != 3 {
        return Err(format!("unexpected header line {header:?}"));
    }
    let names: Vec<String> = parts[1]
        .split_whitespace()
        .map(|f| format!("receive_{f}"))
        .chain(parts[2].split_whitespace().map(|f| format!("transmit_{f}")))
        .collect();

    let mut out = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        // Interface names cannot contain ':' (dev_valid_name rejects it), and old kernels
        // print large counters with no space after the colon, so split on the colon.
        let (device, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("no ':' in line {line:?}"))?;
        let values = rest
            .split_whitespace()
            .map(str::parse::<u64>)
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| format!("invalid counter in line {line:?}"))?;
        if values.len() != names.len() {
            return Err(format!(
                "expected {} values, found {} in line {line:?}",
                names.len(),
                values.len()
            ));
        }
        out.push(NetDevStats {
            device: device.trim().to_owned(),
            counters: names.iter().cloned().zip(values).collect(),
        });
    }
    Ok(out)
}

/// Parses one sysfs integer attribute: decimal (`1500`, `-1`) or hex with `0x` (`flags`,
/// `dev_id`).
pub fn parse_sysfs_int(s: &str) -> Option<i64> {
    let t = s.trim();
    match t.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Numeric attributes of `/sys/class/net/<dev>/` exported as `node_network_<metric>`:
/// `(file, metric suffix, type)`. The names are node_exporter's netclass names.
const NUMERIC_ATTRS: &[(&str, &str, MetricKind)] = &[
    ("addr_assign_type", "address_assign_type", MetricKind::Gauge),
    ("carrier", "carrier", MetricKind::Gauge),
    (
        "carrier_changes",
        "carrier_changes_total",
        MetricKind::Counter,
    ),
    (
        "carrier_up_count",
        "carrier_up_changes_total",
        MetricKind::Counter,
    ),
    (
        "carrier_down_count",
        "carrier_down_changes_total",
        MetricKind::Counter,
    ),
    ("dev_id", "device_id", MetricKind::Gauge),
    ("dormant", "dormant", MetricKind::Gauge),
    ("flags", "flags", MetricKind::Gauge),
    ("ifindex", "iface_id", MetricKind::Gauge),
    ("iflink", "iface_link", MetricKind::Gauge),
    ("link_mode", "iface_link_mode", MetricKind::Gauge),
    ("mtu", "mtu_bytes", MetricKind::Gauge),
    ("name_assign_type", "name_assign_type", MetricKind::Gauge),
    ("netdev_group", "net_dev_group", MetricKind::Gauge),
    ("tx_queue_len", "transmit_queue_length", MetricKind::Gauge),
    ("type", "protocol_type", MetricKind::Gauge),
];

/// What could be read from one `/sys/class/net/<dev>/` directory; `None` = unreadable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetClass {
    /// `operstate` (`up`, `down`, `unknown`, ...).
    pub operstate: Option<String>,
    /// `address` (MAC).
    pub address: Option<String>,
    /// `broadcast`.
    pub broadcast: Option<String>,
    /// `duplex` (`full`, `half`, `unknown`).
    pub duplex: Option<String>,
    /// `ifalias`, the operator's description.
    pub ifalias: Option<String>,
    /// `speed` in Mbit/s; the kernel reports -1 when unknown.
    pub speed_mbps: Option<i64>,
    /// Values of [`NUMERIC_ATTRS`], by the same index.
    pub numeric: Vec<Option<i64>>,
}

impl NetClass {
    /// `up`/`down` from the `IFF_UP` bit of `flags`, `unknown` without flags, as
    /// node_exporter labels `adminstate`.
    pub fn adminstate(&self) -> &'static str {
        let flags = NUMERIC_ATTRS
            .iter()
            .position(|(file, _, _)| *file == "flags")
            .and_then(|i| self.numeric.get(i).copied().flatten());
        match flags {
            None => "unknown",
            Some(f) if f & 1 == 1 => "up",
            Some(_) => "down",
        }
    }
}

/// Reads one interface directory. Never fails: each unreadable attribute is `None`.
///
/// Each attribute is opened relative to the open directory and read with one `read`, rather
/// than `read_to_string` on a full path: that walked `/sys/class/net/<dev>` and its symlink
/// again for each of the ~20 attributes and added an `fstat` and a second `read` to each,
/// which made this the most expensive collector at short intervals.
pub fn read_net_class(dir: &Path) -> NetClass {
    let dir = std::fs::File::open(dir).ok();
    let mut buf = [0u8; 4096];
    let mut text = |name: &str| -> Option<String> {
        let n = read_attribute(dir.as_ref()?, name, &mut buf)?;
        let s = std::str::from_utf8(&buf[..n]).ok()?;
        Some(s.trim_end_matches('\n').to_owned())
    };
    let operstate = text("operstate");
    let address = text("address");
    let broadcast = text("broadcast");
    let duplex = text("duplex");
    let ifalias = text("ifalias");
    let mut int = |name: &str| text(name).as_deref().and_then(parse_sysfs_int);
    NetClass {
        operstate,
        address,
        broadcast,
        duplex,
        ifalias,
        speed_mbps: int("speed"),
        numeric: NUMERIC_ATTRS.iter().map(|(file, _, _)| int(file)).collect(),
    }
}

/// Reads the sysfs attribute `name` of the directory `dir` into `buf`; its length, or `None`
/// when it cannot be read or does not fit (sysfs attributes are at most a page).
fn read_attribute(dir: &std::fs::File, name: &str, buf: &mut [u8]) -> Option<usize> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    use std::io::Read;
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    let mut file = std::fs::File::from(fd);
    // sysfs hands over a whole attribute in the first read.
    let n = file.read(buf).ok()?;
    (n < buf.len()).then_some(n)
}

/// Reads `/proc/net/dev` and `/sys/class/net`, both filtered by `device_exclude` /
/// `device_include`.
pub struct NetdevCollector {
    paths: HostPaths,
    filter: DeviceFilter,
}

impl NetdevCollector {
    /// A collector reading under `paths`. Fails if a regex in `cfg` does not compile.
    pub fn new(paths: HostPaths, cfg: &NetdevConfig) -> Result<Self, CollectorError> {
        let filter = DeviceFilter::new(
            "collectors.netdev",
            &cfg.device_exclude,
            cfg.device_include.as_deref(),
        )?;
        Ok(NetdevCollector { paths, filter })
    }

    fn counters(&self) -> Result<Vec<Family>, CollectorError> {
        let path = self.paths.proc("net/dev");
        let text = super::read_to_string(&path)?;
        let stats = parse_net_dev(&text).map_err(|m| parse_error(&path, m))?;
        // Families in first-seen field order; every device has the same fields because
        // they all come from one header.
        let mut families: Vec<Family> = Vec::new();
        for dev in stats.iter().filter(|d| !self.filter.ignored(&d.device)) {
            for (field, value) in &dev.counters {
                let name = format!("node_network_{field}_total");
                let idx = match families.iter().position(|f| f.name == name) {
                    Some(i) => i,
                    None => {
                        families.push(Family::counter(
                            name,
                            format!("Network device statistic {field}."),
                        ));
                        families.len() - 1
                    }
                };
                families[idx].push(&[("device", &dev.device)], *value as f64);
            }
        }
        Ok(families)
    }

    /// The netclass part. `Err` carries a note when `/sys/class/net` cannot be listed (a
    /// container without sysfs): the counters are still worth reporting.
    fn class(&self) -> Result<Vec<Family>, String> {
        let root = self.paths.sys("class/net");
        let entries = std::fs::read_dir(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let mut devices: Vec<String> = entries
            .flatten()
            // Interfaces are symlinks to directories; `bonding_masters` is a plain file.
            .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|d| !self.filter.ignored(d))
            .collect();
        devices.sort();

        let mut up = Family::gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
        );
        let mut info = Family::gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        );
        let mut numeric: Vec<Family> = NUMERIC_ATTRS
            .iter()
            .map(|(_, metric, kind)| {
                Family::new(
                    format!("node_network_{metric}"),
                    format!("Network device property: {metric}"),
                    *kind,
                )
            })
            .collect();
        let mut speed = Family::gauge(
            "node_network_speed_bytes",
            "Network device property: speed_bytes",
        );

        for dev in &devices {
            let c = read_net_class(&root.join(dev));
            let operstate = c.operstate.as_deref().unwrap_or("");
            let d: &str = dev;
            up.push(&[("device", d)], if operstate == "up" { 1.0 } else { 0.0 });
            info.push(
                &[
                    ("device", d),
                    ("address", c.address.as_deref().unwrap_or("")),
                    ("broadcast", c.broadcast.as_deref().unwrap_or("")),
                    ("duplex", c.duplex.as_deref().unwrap_or("")),
                    ("operstate", operstate),
                    ("adminstate", c.adminstate()),
                    ("ifalias", c.ifalias.as_deref().unwrap_or("")),
                ],
                1.0,
            );
            for (family, v) in numeric.iter_mut().zip(&c.numeric) {
                if let Some(v) = v {
                    family.push(&[("device", d)], *v as f64);
                }
            }
            // -1 means "unknown" (virtio, link down); node_exporter 1.x would export
            // -125000, which no dashboard wants, so skip it like its 2.x default will.
            if let Some(mbps) = c.speed_mbps.filter(|s| *s >= 0) {
                speed.push(&[("device", d)], mbps as f64 * 125_000.0);
            }
        }
        let mut families = vec![up, info];
        families.extend(numeric);
        families.push(speed);
        Ok(families)
    }
}

impl Collector for NetdevCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let mut families = self.counters()?;
        let note = match self.class() {
            Ok(class) => {
                families.extend(class);
                None
            }
            Err(e) => Some(format!("interface properties unavailable: {e}")),
        };
        families.retain(|f| !f.samples.is_empty());
        Ok(Collection { families, note })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    /// This machine's `/proc/net/dev`.
    const REAL: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 113182641    3143    0    0    0     0          0         0   176193    1802    0    0    0     0       0          0
";

    fn value(c: &Collection, name: &str, device: &str) -> Option<f64> {
        let fam = c.families.iter().find(|f| f.name == name)?;
        fam.samples
            .iter()
            .find(|s| s.labels.iter().any(|(k, v)| k == "device" && v == device))
            .map(|s| s.value)
    }

    #[test]
    fn parses_real_net_dev() {
        let stats = parse_net_dev(REAL).unwrap();
        let names: Vec<&str> = stats.iter().map(|s| s.device.as_str()).collect();
        assert_eq!(names, vec!["lo", "ifb0", "ifb1", "eth0"]);
        let eth0 = &stats[3];
        let fields: Vec<&str> = eth0.counters.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "receive_bytes",
                "receive_packets",
                "receive_errs",
                "receive_drop",
                "receive_fifo",
                "receive_frame",
                "receive_compressed",
                "receive_multicast",
                "transmit_bytes",
                "transmit_packets",
                "transmit_errs",
                "transmit_drop",
                "transmit_fifo",
                "transmit_colls",
                "transmit_carrier",
                "transmit_compressed",
            ]
        );
        assert_eq!(eth0.counters[0].1, 113182641);
        assert_eq!(eth0.counters[9].1, 1802);
    }

    #[test]
    fn parses_counters_glued_to_the_colon() {
        let s = "h1\n face |bytes packets|bytes packets\n  eth0:4294967296 7 8 9\n";
        let stats = parse_net_dev(s).unwrap();
        assert_eq!(stats[0].device, "eth0");
        assert_eq!(stats[0].counters[0], ("receive_bytes".into(), 4294967296));
    }

    #[test]
    fn rejects_malformed_net_dev() {
        assert!(parse_net_dev("").is_err());
        assert!(parse_net_dev("only one line\n").is_err());
        assert!(parse_net_dev("a\nno pipes here\n").is_err());
        let head = "a\n face |bytes packets|bytes packets\n";
        assert!(parse_net_dev(&format!("{head}eth0 1 2 3 4\n")).is_err()); // no colon
        assert!(parse_net_dev(&format!("{head}eth0: 1 2 3\n")).is_err()); // too few
        assert!(parse_net_dev(&format!("{head}eth0: 1 2 3 x\n")).is_err()); // not a number
        assert_eq!(parse_net_dev(head).unwrap(), vec![]);
    }

    #[test]
    fn parses_sysfs_ints() {
        assert_eq!(parse_sysfs_int("1500\n"), Some(1500));
        assert_eq!(parse_sysfs_int("-1\n"), Some(-1));
        assert_eq!(parse_sysfs_int("0x1003\n"), Some(0x1003));
        assert_eq!(parse_sysfs_int(""), None);
        assert_eq!(parse_sysfs_int("up"), None);
        assert_eq!(parse_sysfs_int("0xzz"), None);
    }

    #[test]
    fn invalid_regex_is_a_clear_error() {
        let cfg = NetdevConfig {
            device_include: Some("(".into()),
            ..NetdevConfig::default()
        };
        let err = NetdevCollector::new(fixture_paths(), &cfg)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("collectors.netdev.device_include: invalid regex"),
            "{err}"
        );
    }

    #[test]
    fn collects_fixture() {
        let mut c = NetdevCollector::new(fixture_paths(), &NetdevConfig::default()).unwrap();
        let out = c.collect().unwrap();
        assert_eq!(out.note, None);

        // /proc/net/dev counters (this machine's file).
        assert_eq!(
            value(&out, "node_network_receive_bytes_total", "eth0"),
            Some(116189326.0)
        );
        assert_eq!(
            value(&out, "node_network_transmit_packets_total", "eth0"),
            Some(1913.0)
        );
        assert_eq!(
            value(&out, "node_network_receive_packets_total", "lo"),
            Some(29.0)
        );
        assert_eq!(
            value(&out, "node_network_transmit_colls_total", "ifb1"),
            Some(0.0)
        );
        let rx = out
            .families
            .iter()
            .find(|f| f.name == "node_network_receive_errs_total")
            .unwrap();
        assert_eq!(rx.kind, MetricKind::Counter);
        assert_eq!(rx.help, "Network device statistic receive_errs.");
        assert_eq!(rx.samples.len(), 4);

        // sysfs: up/info for every interface directory, not bonding_masters.
        let up = out
            .families
            .iter()
            .find(|f| f.name == "node_network_up")
            .unwrap();
        let ups: Vec<(&str, f64)> = up
            .samples
            .iter()
            .map(|s| (s.labels[0].1.as_str(), s.value))
            .collect();
        assert_eq!(
            ups,
            vec![
                ("bond0", 1.0),
                ("bond1", 0.0),
                ("eth0", 1.0),
                ("eth1", 1.0),
                ("eth2", 0.0),
                ("lo", 0.0)
            ]
        );
        let info = out
            .families
            .iter()
            .find(|f| f.name == "node_network_info")
            .unwrap();
        let eth1 = info
            .samples
            .iter()
            .find(|s| s.labels.contains(&("device".into(), "eth1".into())))
            .unwrap();
        let labels: Vec<(&str, &str)> = eth1
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("address", "3c:ec:ef:10:20:31"),
                ("adminstate", "up"),
                ("broadcast", "ff:ff:ff:ff:ff:ff"),
                ("device", "eth1"),
                ("duplex", "full"),
                ("ifalias", "uplink A (sw1 port 12)"),
                ("operstate", "up"),
            ]
        );
        // lo has no readable duplex: the label is empty, the sample is still there.
        let lo = info
            .samples
            .iter()
            .find(|s| s.labels.contains(&("device".into(), "lo".into())))
            .unwrap();
        assert!(lo.labels.contains(&("duplex".into(), String::new())));
        assert!(lo.labels.contains(&("operstate".into(), "unknown".into())));
        // bond1's flags (0x1402) lack IFF_UP.
        assert_eq!(
            info.samples
                .iter()
                .find(|s| s.labels.contains(&("device".into(), "bond1".into())))
                .map(|s| s.labels.contains(&("adminstate".into(), "down".into()))),
            Some(true)
        );

        assert_eq!(value(&out, "node_network_mtu_bytes", "eth0"), Some(1400.0));
        assert_eq!(value(&out, "node_network_mtu_bytes", "lo"), Some(65536.0));
        assert_eq!(value(&out, "node_network_carrier", "eth2"), Some(0.0));
        assert_eq!(value(&out, "node_network_carrier", "bond1"), None);
        assert_eq!(
            value(&out, "node_network_transmit_queue_length", "eth0"),
            Some(1000.0)
        );
        assert_eq!(value(&out, "node_network_flags", "eth0"), Some(4099.0));
        assert_eq!(value(&out, "node_network_protocol_type", "lo"), Some(772.0));
        assert_eq!(
            value(&out, "node_network_carrier_changes_total", "eth0"),
            Some(2.0)
        );
        // 10000 Mbit/s = 1.25 GB/s; eth0's -1 and lo's EINVAL (absent here) are skipped.
        assert_eq!(
            value(&out, "node_network_speed_bytes", "eth1"),
            Some(1_250_000_000.0)
        );
        assert_eq!(value(&out, "node_network_speed_bytes", "eth0"), None);
        assert_eq!(value(&out, "node_network_speed_bytes", "lo"), None);
        let kind = |name: &str| out.families.iter().find(|f| f.name == name).unwrap().kind;
        assert_eq!(kind("node_network_up"), MetricKind::Gauge);
        assert_eq!(kind("node_network_info"), MetricKind::Gauge);
        assert_eq!(
            kind("node_network_carrier_changes_total"),
            MetricKind::Counter
        );
    }

    #[test]
    fn filter_applies_to_counters_and_sysfs() {
        let cfg = NetdevConfig {
            device_exclude: "^(lo|ifb\\d+|bond\\d+)$".into(),
            ..NetdevConfig::default()
        };
        let mut c = NetdevCollector::new(fixture_paths(), &cfg).unwrap();
        let out = c.collect().unwrap();
        for f in &out.families {
            for s in &f.samples {
                let dev = &s.labels.iter().find(|(k, _)| k == "device").unwrap().1;
                assert!(
                    dev.starts_with("eth"),
                    "{} has excluded device {dev}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn missing_sysfs_is_a_note_not_an_error() {
        let mut paths = fixture_paths();
        paths.sysfs = paths.sysfs.join("does-not-exist");
        let mut c = NetdevCollector::new(paths, &NetdevConfig::default()).unwrap();
        let out = c.collect().unwrap();
        assert!(out
            .note
            .as_deref()
            .unwrap()
            .contains("interface properties unavailable"));
        assert_eq!(
            value(&out, "node_network_receive_bytes_total", "eth0"),
            Some(116189326.0)
        );
        assert!(out.families.iter().all(|f| f.name != "node_network_up"));
    }
}
