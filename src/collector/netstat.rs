//! `netstat` collector: the protocol counters of `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6` selected by `collectors.netstat.fields`, as untyped
//! `node_netstat_<Protocol>_<Field>` metrics like node_exporter's netstat collector
//! (`node_netstat_Tcp_InSegs`, `node_netstat_TcpExt_ListenDrops`, `node_netstat_Udp6_NoPorts`).
//!
//! The names keep the kernel's CamelCase on purpose: they are node_exporter's names, and the
//! dashboards and alerts written for it select them verbatim.

use std::collections::HashMap;

use super::filter::NameFilter;

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::config::NetstatConfig;
use crate::model::{Family, MetricKind};

/// One counter: `Tcp` + `InSegs` = 6603, borrowed from the file's text (the collector reads
/// ~400 fields a collection and keeps a few dozen, so nothing is copied before selection).
#[derive(Debug, Clone, PartialEq)]
pub struct NetstatField<'a> {
    /// Protocol, e.g. `Tcp`, `TcpExt`, `Icmp6`.
    pub protocol: &'a str,
    /// Field within the protocol, e.g. `InSegs`.
    pub field: &'a str,
    /// The value; a few fields are signed (`Tcp MaxConn` is -1: no limit).
    pub value: f64,
}

/// Parses a counter value. The kernel prints integers, signed or unsigned 64-bit; anything
/// else (including the floats, `NaN` and `inf` a float parser would accept) is an error.
fn parse_counter(s: &str) -> Option<f64> {
    s.parse::<i64>()
        .map(|v| v as f64)
        .or_else(|_| s.parse::<u64>().map(|v| v as f64))
        .ok()
}

/// Parses the header/value line pairs of `/proc/net/netstat` and `/proc/net/snmp`:
///
/// ```text
/// Tcp: RtoAlgorithm RtoMin ... InSegs OutSegs
/// Tcp: 1 200 ... 6603 4343
/// ```
///
/// Fields come back in file order. A header without its value line, a value line for another
/// protocol, a different number of names and values, or a value that is not an integer is an
/// error (as in node_exporter): names and values are matched by position, so a pair that does
/// not line up cannot be trusted field by field.
pub fn parse_netstat(s: &str) -> Result<Vec<NetstatField<'_>>, String> {
    let mut out = Vec::new();
    let mut lines = s
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    while let Some((n, header)) = lines.next() {
        let (protocol, names) = header
            .split_once(':')
            .ok_or_else(|| format!("line {}: no \"Protocol:\" prefix in {header:?}", n + 1))?;
        let Some((m, values_line)) = lines.next() else {
            return Err(format!(
                "line {}: {protocol} header has no value line",
                n + 1
            ));
        };
        let (value_protocol, values) = values_line
            .split_once(':')
            .ok_or_else(|| format!("line {}: no \"Protocol:\" prefix in {values_line:?}", m + 1))?;
        if value_protocol != protocol {
            return Err(format!(
                "line {}: {protocol} header followed by {value_protocol} values",
                m + 1
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(format!(
                "line {}: {protocol} has {} names but {} values",
                m + 1,
                names.len(),
                values.len()
            ));
        }
        for (name, value) in names.into_iter().zip(values) {
            let value = parse_counter(value).ok_or_else(|| {
                format!("line {}: {protocol} {name}: invalid value {value:?}", m + 1)
            })?;
            out.push(NetstatField {
                protocol,
                field: name,
                value,
            });
        }
    }
    Ok(out)
}

/// Parses `/proc/net/snmp6`, one `Ip6InReceives <tab> 1` per line. The protocol is the name up
/// to and including its first `6` (`Ip6`, `Icmp6`, `Udp6`, `UdpLite6`), the field the rest, as
/// node_exporter splits it; names without a `6` are skipped, as there. A line that is not
/// exactly a name and an integer is an error.
pub fn parse_snmp6(s: &str) -> Result<Vec<NetstatField<'_>>, String> {
    let mut out = Vec::new();
    for (n, line) in s.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, value) = match parts.as_slice() {
            [] => continue,
            [name, value] => (*name, *value),
            _ => return Err(format!("line {}: expected \"name value\": {line:?}", n + 1)),
        };
        let Some(six) = name.find('6') else {
            continue;
        };
        let (protocol, field) = name.split_at(six + 1);
        let value = parse_counter(value)
            .ok_or_else(|| format!("line {}: {name}: invalid value {value:?}", n + 1))?;
        out.push(NetstatField {
            protocol,
            field,
            value,
        });
    }
    Ok(out)
}

/// Whether `s` can be used inside a metric name as is.
fn is_name_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Builds one untyped family per field whose `<Protocol>_<Field>` matches `select`, in input
/// order. Untyped like node_exporter's: the files mix counters (`InSegs`) with gauges
/// (`CurrEstab`, `Forwarding`) without saying which is which. If a name occurs twice the last
/// value wins (node_exporter merges the files the same way), so the output never carries a
/// duplicate family. A name that is not metric-safe is skipped rather than exported broken.
pub fn netstat_families(fields: &[NetstatField<'_>], select: &NameFilter) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    for f in fields {
        key.clear();
        key.push_str(f.protocol);
        key.push('_');
        key.push_str(f.field);
        if !is_name_safe(f.protocol) || !is_name_safe(f.field) || !select.is_match(&key) {
            continue;
        }
        let family = Family::new(
            format!("node_netstat_{key}"),
            format!("Statistic {}{}.", f.protocol, f.field),
            MetricKind::Untyped,
        )
        .with(&[], f.value);
        match index.get(&key) {
            Some(&i) => out[i] = family,
            None => {
                index.insert(key.clone(), out.len());
                out.push(family);
            }
        }
    }
    out
}

/// Reads the three files and exports the fields matching a regex.
pub struct NetstatCollector {
    paths: HostPaths,
    fields: NameFilter,
}

impl NetstatCollector {
    /// A collector reading under `paths`; fails if `cfg.fields` is not a valid regex.
    pub fn new(paths: HostPaths, cfg: &NetstatConfig) -> Result<Self, CollectorError> {
        let fields = NameFilter::new(&cfg.fields).map_err(|e| {
            CollectorError::Other(format!(
                "collectors.netstat.fields: invalid regular expression {:?}: {e}",
                cfg.fields
            ))
        })?;
        Ok(NetstatCollector { paths, fields })
    }
}

impl Collector for NetstatCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        // netstat and snmp exist on every kernel with IPv4, so their absence is an error, as
        // in node_exporter; snmp6 is missing when IPv6 is disabled, which is normal.
        let netstat_path = self.paths.proc("net/netstat");
        let netstat = super::read_to_string(&netstat_path)?;
        let snmp_path = self.paths.proc("net/snmp");
        let snmp = super::read_to_string(&snmp_path)?;
        let snmp6_path = self.paths.proc("net/snmp6");
        let snmp6 = super::read_optional(&snmp6_path)?;

        let mut fields = parse_netstat(&netstat).map_err(|m| parse_error(&netstat_path, m))?;
        fields.extend(parse_netstat(&snmp).map_err(|m| parse_error(&snmp_path, m))?);
        let note = match &snmp6 {
            Some(text) => {
                fields.extend(parse_snmp6(text).map_err(|m| parse_error(&snmp6_path, m))?);
                None
            }
            None => Some(format!(
                "{} not found (IPv6 disabled?); IPv6 counters skipped",
                snmp6_path.display()
            )),
        };
        Ok(Collection {
            families: netstat_families(&fields, &self.fields),
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;
    use crate::config::DEFAULT_NETSTAT_FIELDS;

    const NETSTAT: &str = include_str!("../../tests/fixtures/host/proc/net/netstat");
    const SNMP: &str = include_str!("../../tests/fixtures/host/proc/net/snmp");
    const SNMP6: &str = include_str!("../../tests/fixtures/host/proc/net/snmp6");

    fn get(fields: &[NetstatField], protocol: &str, field: &str) -> Option<f64> {
        fields
            .iter()
            .find(|f| f.protocol == protocol && f.field == field)
            .map(|f| f.value)
    }

    #[test]
    fn parses_real_netstat_and_snmp() {
        let netstat = parse_netstat(NETSTAT).unwrap();
        assert_eq!(get(&netstat, "IpExt", "InOctets"), Some(161360224.0));
        assert_eq!(get(&netstat, "TcpExt", "TCPSynRetrans"), Some(0.0));
        assert_eq!(get(&netstat, "TcpExt", "TW"), Some(176.0));
        assert_eq!(get(&netstat, "MPTcpExt", "WinProbe"), Some(0.0));

        let snmp = parse_netstat(SNMP).unwrap();
        assert_eq!(get(&snmp, "Tcp", "InSegs"), Some(7421.0));
        assert_eq!(get(&snmp, "Tcp", "OutRsts"), Some(33.0));
        // Signed: -1 means "no limit".
        assert_eq!(get(&snmp, "Tcp", "MaxConn"), Some(-1.0));
        assert_eq!(get(&snmp, "Ip", "Forwarding"), Some(2.0));
        assert_eq!(get(&snmp, "IcmpMsg", "InType3"), Some(1.0));
        assert_eq!(get(&snmp, "UdpLite", "InErrors"), Some(0.0));
    }

    #[test]
    fn parses_real_snmp6() {
        let snmp6 = parse_snmp6(SNMP6).unwrap();
        assert_eq!(snmp6.len(), SNMP6.lines().count());
        assert_eq!(get(&snmp6, "Ip6", "InReceives"), Some(1.0));
        assert_eq!(get(&snmp6, "Ip6", "OutOctets"), Some(880.0));
        assert_eq!(get(&snmp6, "Icmp6", "OutMsgs"), Some(9.0));
        assert!(get(&snmp6, "UdpLite6", "InErrors").is_some());
    }

    #[test]
    fn snmp6_splits_at_the_first_six_and_skips_names_without_one() {
        let f = parse_snmp6("Icmp6OutType133\t3\nUdpLite6InErrors 2\nIpfoo 9\n\n").unwrap();
        assert_eq!(
            f,
            vec![
                NetstatField {
                    protocol: "Icmp6",
                    field: "OutType133",
                    value: 3.0
                },
                NetstatField {
                    protocol: "UdpLite6",
                    field: "InErrors",
                    value: 2.0
                },
            ]
        );
    }

    #[test]
    fn rejects_malformed_netstat() {
        let cases = [
            ("Tcp: InSegs OutSegs\n", "no value line"),
            ("Tcp: InSegs OutSegs\nUdp: 1 2\n", "followed by Udp"),
            ("Tcp: InSegs OutSegs\nTcp: 1\n", "2 names but 1 values"),
            ("Tcp: InSegs OutSegs\nTcp: 1 x\n", "invalid value \"x\""),
            ("Tcp: InSegs\nTcp: 1.5\n", "invalid value"),
            ("Tcp: InSegs\nTcp: NaN\n", "invalid value"),
            ("garbage\n", "no \"Protocol:\" prefix"),
            ("Tcp: InSegs\ngarbage\n", "line 2"),
        ];
        for (input, want) in cases {
            match parse_netstat(input) {
                Err(e) => assert!(e.contains(want), "{input:?}: {e}"),
                Ok(f) => panic!("{input:?} parsed: {f:?}"),
            }
        }
        assert_eq!(parse_netstat("").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_snmp6() {
        for input in [
            "Ip6InReceives\n",
            "Ip6InReceives 1 2\n",
            "Ip6InReceives x\n",
        ] {
            assert!(parse_snmp6(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn default_selection_matches_node_exporter() {
        let re = NameFilter::new(DEFAULT_NETSTAT_FIELDS).unwrap();
        let mut fields = parse_netstat(NETSTAT).unwrap();
        fields.extend(parse_netstat(SNMP).unwrap());
        fields.extend(parse_snmp6(SNMP6).unwrap());
        fields.push(NetstatField {
            protocol: "TcpExt",
            field: "TCPTimeoutsX",
            value: 1.0,
        });
        let names: Vec<String> = netstat_families(&fields, &re)
            .into_iter()
            .map(|f| f.name)
            .collect();
        for want in [
            "node_netstat_TcpExt_ListenOverflows",
            "node_netstat_TcpExt_ListenDrops",
            "node_netstat_TcpExt_SyncookiesSent",
            "node_netstat_TcpExt_TCPSynRetrans",
            "node_netstat_TcpExt_TCPTimeouts",
            "node_netstat_IpExt_InOctets",
            "node_netstat_IpExt_OutOctets",
            "node_netstat_Ip_Forwarding",
            "node_netstat_Tcp_CurrEstab",
            "node_netstat_Tcp_InErrs",
            "node_netstat_Udp_RcvbufErrors",
            "node_netstat_UdpLite_InErrors",
            "node_netstat_Icmp_InMsgs",
            "node_netstat_Ip6_InOctets",
            "node_netstat_Icmp6_OutMsgs",
            "node_netstat_Udp6_NoPorts",
            "node_netstat_UdpLite6_InErrors",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing");
        }
        for unwanted in [
            "node_netstat_TcpExt_TW",
            "node_netstat_Tcp_MaxConn",
            "node_netstat_IcmpMsg_InType3",
            "node_netstat_Ip6_InReceives",
            "node_netstat_MPTcpExt_WinProbe",
            // Anchored: a field that merely contains a selected name is not selected.
            "node_netstat_TcpExt_TCPTimeoutsX",
        ] {
            assert!(!names.iter().any(|n| n == unwanted), "{unwanted} exported");
        }
    }

    #[test]
    fn families_are_untyped_unique_and_safe() {
        let all = NameFilter::new("").unwrap();
        let fields =
            parse_netstat("Tcp: InSegs\nTcp: 1\nTcp: InSegs\nTcp: 2\nX-y: a\nX-y: 3\n").unwrap();
        let families = netstat_families(&fields, &all);
        assert_eq!(families.len(), 1);
        let f = &families[0];
        assert_eq!(
            (f.name.as_str(), f.help.as_str(), f.kind),
            (
                "node_netstat_Tcp_InSegs",
                "Statistic TcpInSegs.",
                MetricKind::Untyped
            )
        );
        assert_eq!(f.samples[0].value, 2.0);
    }

    #[test]
    fn invalid_regex_is_a_config_error() {
        let cfg = NetstatConfig {
            fields: "^(Tcp".into(),
            ..Default::default()
        };
        match NetstatCollector::new(fixture_paths(), &cfg) {
            Err(CollectorError::Other(m)) => assert!(m.contains("collectors.netstat.fields")),
            _ => panic!("expected a config error"),
        }
    }

    #[test]
    fn collects_fixture() {
        let mut c = NetstatCollector::new(fixture_paths(), &NetstatConfig::default()).unwrap();
        let out = c.collect().unwrap();
        assert_eq!(out.note, None);
        let value = |n: &str| {
            out.families
                .iter()
                .find(|f| f.name == n)
                .map(|f| (f.kind, f.samples[0].value))
        };
        assert_eq!(
            value("node_netstat_Tcp_InSegs"),
            Some((MetricKind::Untyped, 7421.0))
        );
        assert_eq!(
            value("node_netstat_IpExt_InOctets"),
            Some((MetricKind::Untyped, 161360224.0))
        );
        assert_eq!(
            value("node_netstat_Ip6_OutOctets"),
            Some((MetricKind::Untyped, 880.0))
        );
    }

    #[test]
    fn missing_snmp6_is_a_note_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        std::fs::create_dir(&net).unwrap();
        std::fs::write(net.join("netstat"), NETSTAT).unwrap();
        std::fs::write(net.join("snmp"), SNMP).unwrap();
        let paths = HostPaths {
            procfs: dir.path().to_owned(),
            sysfs: dir.path().to_owned(),
            rootfs: dir.path().to_owned(),
        };
        let mut c = NetstatCollector::new(paths, &NetstatConfig::default()).unwrap();
        let out = c.collect().unwrap();
        assert!(out.note.unwrap().contains("snmp6"));
        assert!(out
            .families
            .iter()
            .any(|f| f.name == "node_netstat_Tcp_InSegs"));
        assert!(!out.families.iter().any(|f| f.name.contains("6_")));

        // netstat itself missing is an error, as in node_exporter.
        std::fs::remove_file(net.join("netstat")).unwrap();
        assert!(matches!(c.collect(), Err(CollectorError::Io { .. })));
    }
}
