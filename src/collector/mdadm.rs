//! `mdadm` collector: Linux software RAID state from `/proc/mdstat` as node_exporter's
//! `node_md_*` families, which the node-mixin's `NodeRAIDDegraded` and `NodeRAIDDiskFailure`
//! alerts read.
//!
//! The parser follows the layout the kernel's `md_seq_show` prints, and the interpretation of
//! prometheus/procfs (which node_exporter uses), so the numbers match node_exporter's.

use std::io;
use std::sync::LazyLock;

use regex::Regex;

use super::{parse_error, Collection, Collector, CollectorError, HostPaths};
use crate::model::Family;

/// One md device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdStat {
    /// Device name (`md0`).
    pub name: String,
    /// `active`, `inactive`, or while a sync runs `recovering`, `resyncing`, `checking`,
    /// `reshaping` (procfs's words).
    pub state: String,
    /// Disks in sync (the `m` in `[n/m]`).
    pub disks_active: u64,
    /// Disks the array needs (the `n` in `[n/m]`).
    pub disks_total: u64,
    /// Members marked `(F)`.
    pub disks_failed: u64,
    /// Members marked `(S)`.
    pub disks_spare: u64,
    /// Size in 1 KiB blocks.
    pub blocks_total: u64,
    /// Blocks in sync: the progress of a running sync, otherwise `blocks_total`.
    pub blocks_synced: u64,
}

/// `[n/m] [UU_]` on the status line of redundant personalities.
static STATUS_RE: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"\[(\d+)/(\d+)\] \[[U_]+\]"));
/// `(done/total)` on a recovery/resync/check/reshape progress line.
static PROGRESS_RE: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"\((\d+)/\d+\)"));

fn regex(re: &'static LazyLock<Result<Regex, regex::Error>>) -> Result<&'static Regex, String> {
    re.as_ref()
        .map_err(|e| format!("internal regex error: {e}"))
}

/// Whether a line continues the current device (the kernel indents them).
fn is_continuation(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('\t')
}

/// Parses `/proc/mdstat`. Errors name the device whose lines are malformed.
pub fn parse_mdstat(s: &str) -> Result<Vec<MdStat>, String> {
    let lines: Vec<&str> = s.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || is_continuation(line)
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "md0 : active raid1 sdb1[1] sda1[0]": name, colon, state, ...
        if fields.len() < 3 || fields[1] != ":" {
            return Err(format!("unexpected device line {line:?}"));
        }
        let name = fields[0];
        let mut state = fields[2].to_owned();
        // Continuation lines of this device, in order: status, then optionally a sync
        // progress line and a bitmap line.
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| is_continuation(l))
            .copied()
            .collect();
        let status = body
            .first()
            .ok_or_else(|| format!("{name}: missing status line"))?;
        let blocks_total: u64 = status
            .split_whitespace()
            .next()
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| format!("{name}: no block count in {status:?}"))?;

        let disks_failed = line.matches("(F)").count() as u64;
        let disks_spare = line.matches("(S)").count() as u64;
        // Personalities without redundancy have no "[n/m]": every listed member counts.
        let striped = fields[3..].iter().any(|f| *f == "raid0" || *f == "linear");
        let (disks_total, disks_active) = if striped {
            let members = fields[3..].iter().filter(|f| f.contains('[')).count() as u64;
            (members, members)
        } else if state == "inactive" {
            (0, 0)
        } else {
            let caps = regex(&STATUS_RE)?
                .captures(status)
                .ok_or_else(|| format!("{name}: no [n/m] in status line {status:?}"))?;
            let num = |k: usize| caps[k].parse::<u64>().map_err(|e| format!("{name}: {e}"));
            (num(1)?, num(2)?)
        };

        let mut blocks_synced = blocks_total;
        if let Some(sync) = body[1..].iter().find(|l| !l.contains("bitmap")) {
            let new_state = if sync.contains("recovery") {
                Some("recovering")
            } else if sync.contains("reshape") {
                Some("reshaping")
            } else if sync.contains("check") {
                Some("checking")
            } else if sync.contains("resync") {
                Some("resyncing")
            } else {
                None
            };
            if let Some(s) = new_state {
                state = s.to_owned();
                // "resync=PENDING" / "resync=DELAYED": queued behind another array.
                blocks_synced = if sync.contains("PENDING") || sync.contains("DELAYED") {
                    0
                } else {
                    regex(&PROGRESS_RE)?
                        .captures(sync)
                        .and_then(|c| c[1].parse().ok())
                        .ok_or_else(|| format!("{name}: no progress in {sync:?}"))?
                };
            }
        }
        out.push(MdStat {
            name: name.to_owned(),
            state,
            disks_active,
            disks_total,
            disks_failed,
            disks_spare,
            blocks_total,
            blocks_synced,
        });
    }
    Ok(out)
}

/// `node_md_state` labels and the parsed state that sets each to 1. The last two differ on
/// purpose: node_exporter labels procfs's `resyncing`/`checking` as `resync`/`check`. A
/// `reshaping` array sets none of them, as in node_exporter.
const STATES: [(&str, &str); 5] = [
    ("active", "active"),
    ("inactive", "inactive"),
    ("recovering", "recovering"),
    ("resync", "resyncing"),
    ("check", "checking"),
];

/// Reads `/proc/mdstat`.
pub struct MdadmCollector {
    paths: HostPaths,
}

impl MdadmCollector {
    /// A collector reading under `paths`.
    pub fn new(paths: HostPaths) -> Self {
        MdadmCollector { paths }
    }
}

impl Collector for MdadmCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let path = self.paths.proc("mdstat");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // No md driver loaded: nothing to report, and nothing wrong.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Collection {
                    families: Vec::new(),
                    note: Some(format!("{} does not exist (no md driver)", path.display())),
                })
            }
            Err(source) => return Err(CollectorError::Io { path, source }),
        };
        let arrays = parse_mdstat(&text).map_err(|m| parse_error(&path, m))?;

        let mut state = Family::gauge("node_md_state", "Indicates the state of md-device.");
        let mut disks = Family::gauge(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
        );
        let mut required =
            Family::gauge("node_md_disks_required", "Total number of disks of device.");
        let mut blocks = Family::gauge("node_md_blocks", "Total number of blocks on device.");
        let mut synced = Family::gauge(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
        );
        for md in &arrays {
            let dev = md.name.as_str();
            for (label, parsed) in STATES {
                let v = if md.state == parsed { 1.0 } else { 0.0 };
                state.push(&[("device", dev), ("state", label)], v);
            }
            disks.push(
                &[("device", dev), ("state", "active")],
                md.disks_active as f64,
            );
            disks.push(
                &[("device", dev), ("state", "failed")],
                md.disks_failed as f64,
            );
            disks.push(
                &[("device", dev), ("state", "spare")],
                md.disks_spare as f64,
            );
            required.push(&[("device", dev)], md.disks_total as f64);
            blocks.push(&[("device", dev)], md.blocks_total as f64);
            synced.push(&[("device", dev)], md.blocks_synced as f64);
        }
        let mut families = vec![state, disks, required, blocks, synced];
        families.retain(|f| !f.samples.is_empty());
        Ok(families.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::fixture_paths;

    fn one(s: &str) -> MdStat {
        let mut v = parse_mdstat(s).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    fn md(
        name: &str,
        state: &str,
        [active, total, failed, spare]: [u64; 4],
        blocks_total: u64,
        blocks_synced: u64,
    ) -> MdStat {
        MdStat {
            name: name.into(),
            state: state.into(),
            disks_active: active,
            disks_total: total,
            disks_failed: failed,
            disks_spare: spare,
            blocks_total,
            blocks_synced,
        }
    }

    #[test]
    fn raid1_recovering_with_bitmap() {
        let s = "Personalities : [raid1]
md1 : active raid1 sdb2[2] sda2[0]
      976629760 blocks super 1.2 [2/1] [U_]
      [====>................]  recovery = 22.4% (218762240/976629760) finish=72.3min speed=174562K/sec
      bitmap: 3/8 pages [12KB], 65536KB chunk

unused devices: <none>
";
        assert_eq!(
            one(s),
            md("md1", "recovering", [1, 2, 0, 0], 976629760, 218762240)
        );
    }

    #[test]
    fn raid5_resync_with_spare() {
        let s = "md2 : active raid5 sdf1[4] sde1[2] sdd1[1] sdc1[0] sdg1[5](S)
      5860144128 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/4] [UUUU]
      [=>...................]  resync =  6.9% (134836736/1953381376) finish=245.1min speed=123628K/sec
";
        assert_eq!(
            one(s),
            md("md2", "resyncing", [4, 4, 0, 1], 5860144128, 134836736)
        );
    }

    #[test]
    fn raid0_counts_members() {
        let s = "md0 : active raid0 nvme1n1p1[1] nvme0n1p1[0]
      1000148992 blocks super 1.2 512k chunks

";
        assert_eq!(
            one(s),
            md("md0", "active", [2, 2, 0, 0], 1000148992, 1000148992)
        );
    }

    #[test]
    fn raid10_is_not_mistaken_for_raid0() {
        let s = "md4 : active raid10 sdd[3] sdc[2] sdb[1] sda[0]
      1953260544 blocks super 1.2 512K chunks 2 near-copies [4/3] [UUU_]
";
        assert_eq!(
            one(s),
            md("md4", "active", [3, 4, 0, 0], 1953260544, 1953260544)
        );
    }

    #[test]
    fn inactive_array_of_spares() {
        let s = "md127 : inactive sdj[0](S) sdk[1](S)
      3906764976 blocks super 1.2
";
        assert_eq!(
            one(s),
            md("md127", "inactive", [0, 0, 0, 2], 3906764976, 3906764976)
        );
    }

    #[test]
    fn failed_disk_with_bitmap_and_no_sync() {
        let s = "md3 : active raid1 sdi1[1](F) sdh1[0]
      1953381376 blocks super 1.2 [2/1] [U_]
      bitmap: 2/15 pages [8KB], 65536KB chunk
";
        assert_eq!(
            one(s),
            md("md3", "active", [1, 2, 1, 0], 1953381376, 1953381376)
        );
    }

    #[test]
    fn check_delayed_and_read_only() {
        let s = "md201 : active raid1 sda3[0] sdb3[1]
      1993728 blocks super 1.2 [2/2] [UU]
      [=>...................]  check =  5.7% (114176/1993728) finish=0.2min speed=114176K/sec

md9 : active raid1 sdc2[2] sdd2[3] sdb2[1] sda2[0] sde[4](F) sdf[5](F) sdg[6](S)
      523968 blocks super 1.2 [4/4] [UUUU]
      resync=DELAYED

md11 : active (auto-read-only) raid1 sdb2[0] sdc2[1]
      4190208 blocks super 1.2 [2/2] [UU]
      resync=PENDING
";
        assert_eq!(
            parse_mdstat(s).unwrap(),
            vec![
                md("md201", "checking", [2, 2, 0, 0], 1993728, 114176),
                md("md9", "resyncing", [4, 4, 2, 1], 523968, 0),
                md("md11", "resyncing", [2, 2, 0, 0], 4190208, 0),
            ]
        );
    }

    #[test]
    fn empty_mdstat_has_no_arrays() {
        let s = "Personalities : \nunused devices: <none>\n";
        assert_eq!(parse_mdstat(s).unwrap(), vec![]);
        assert_eq!(parse_mdstat("").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_mdstat() {
        // Device line without a status line.
        assert!(parse_mdstat("md0 : active raid1 sda[0] sdb[1]\n").is_err());
        // Not a device line.
        assert!(parse_mdstat("garbage here\n").is_err());
        assert!(parse_mdstat("md0 active\n").is_err());
        // Status line without a block count.
        assert!(parse_mdstat("md0 : active raid1 sda[0]\n      blocks [2/2] [UU]\n").is_err());
        // Redundant array without [n/m].
        assert!(parse_mdstat("md0 : active raid1 sda[0]\n      100 blocks\n").is_err());
        // Progress line without (done/total).
        assert!(parse_mdstat(
            "md0 : active raid1 sda[0]\n      100 blocks [2/2] [UU]\n      resync = 5%\n"
        )
        .is_err());
        // Numbers too large for u64 are an error, not a panic.
        assert!(parse_mdstat(
            "md0 : active raid1 sda[0]\n      100 blocks [99999999999999999999/2] [UU]\n"
        )
        .is_err());
    }

    #[test]
    fn missing_file_is_an_empty_collection_with_a_note() {
        let mut paths = fixture_paths();
        paths.procfs = paths.procfs.join("nowhere");
        let out = MdadmCollector::new(paths).collect().unwrap();
        assert!(out.families.is_empty());
        assert!(out.note.unwrap().contains("does not exist"));
    }

    fn get(c: &Collection, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let fam = c.families.iter().find(|f| f.name == name)?;
        fam.samples
            .iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn collects_fixture() {
        let out = MdadmCollector::new(fixture_paths()).collect().unwrap();
        assert_eq!(out.note, None);
        let state = |dev: &str| -> Vec<&str> {
            STATES
                .iter()
                .filter(|(label, _)| {
                    get(&out, "node_md_state", &[("device", dev), ("state", label)]) == Some(1.0)
                })
                .map(|(label, _)| *label)
                .collect()
        };
        assert_eq!(state("md1"), vec!["recovering"]);
        assert_eq!(state("md2"), vec!["resync"]);
        assert_eq!(state("md3"), vec!["active"]);
        assert_eq!(state("md0"), vec!["active"]);
        assert_eq!(state("md127"), vec!["inactive"]);
        // Every device has all five state samples.
        let n_state = out
            .families
            .iter()
            .find(|f| f.name == "node_md_state")
            .map(|f| f.samples.len());
        assert_eq!(n_state, Some(25));

        let disks =
            |dev: &str, st: &str| get(&out, "node_md_disks", &[("device", dev), ("state", st)]);
        assert_eq!(disks("md1", "active"), Some(1.0));
        assert_eq!(disks("md2", "spare"), Some(1.0));
        assert_eq!(disks("md3", "failed"), Some(1.0));
        assert_eq!(disks("md127", "spare"), Some(2.0));
        let req = |dev: &str| get(&out, "node_md_disks_required", &[("device", dev)]);
        assert_eq!(req("md1"), Some(2.0));
        assert_eq!(req("md2"), Some(4.0));
        assert_eq!(req("md0"), Some(2.0));
        assert_eq!(req("md127"), Some(0.0));
        assert_eq!(
            get(&out, "node_md_blocks", &[("device", "md2")]),
            Some(5860144128.0)
        );
        assert_eq!(
            get(&out, "node_md_blocks_synced", &[("device", "md1")]),
            Some(218762240.0)
        );
        assert_eq!(
            get(&out, "node_md_blocks_synced", &[("device", "md3")]),
            Some(1953381376.0)
        );
        // What NodeRAIDDegraded computes: required - active > 0 for md1 and md3 only.
        let degraded: Vec<&str> = ["md0", "md1", "md2", "md3", "md127"]
            .into_iter()
            .filter(|d| req(d).unwrap() - disks(d, "active").unwrap() > 0.0)
            .collect();
        assert_eq!(degraded, vec!["md1", "md3"]);
    }
}
