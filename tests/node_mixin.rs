//! node-mixin compatibility: every raw `node_*` series that node_exporter's own alert rules,
//! recording rules and dashboards (`docs/node-mixin` in prometheus/node_exporter) read on Linux
//! is exported by automon, with the labels and the metric type the expressions rely on, so those
//! rules and dashboards work on automon unchanged.
//!
//! Each metric is looked up in the `/metrics` of the real daemon on this host and in the fixture
//! tree's output `tests/fixtures/host/golden.prom` (see `tests/golden.rs`). Where it must be found
//! is its [`Src`]: `Live` for what every Linux host has, `Fixture` for hardware we do not have in
//! CI (software RAID, bonding), `Either` for what depends on the kernel build or the hardware.
//! Wherever a metric is found, every sample must carry the listed labels and its `# TYPE` must be
//! node_exporter's.
//!
//! Provenance: the metric names, labels and selectors below were read from these files under
//! `docs/node-mixin/` in github.com/prometheus/node_exporter (master, the `lib/linux` generation,
//! plus the classic grafonnet-7 dashboards it replaced, which are still deployed widely):
//!
//! | short name  | file                                                                   |
//! |-------------|------------------------------------------------------------------------|
//! | alerts      | `alerts/alerts.libsonnet`, `lib/linux/alerts/alerts.libsonnet`          |
//! | rules       | `rules/rules.libsonnet`, `lib/linux/rules/rules.libsonnet`              |
//! | nodes.json  | `dashboards/node.libsonnet`, `lib/prom-mixin.libsonnet`, `lib/common.libsonnet` |
//! | use.json    | `dashboards/use.libsonnet`, `dashboards/use-node.libsonnet`, `dashboards/use-cluster.libsonnet`, `lib/linux/targets/useCluster.libsonnet` |
//! | fleet.json  | `dashboards/fleet.libsonnet`, `lib/linux/targets/alerts.libsonnet`      |
//! | t/cpu       | `lib/linux/targets/cpu.libsonnet`                                      |
//! | t/system    | `lib/linux/targets/system.libsonnet`, `lib/linux/panels/system.libsonnet`, `dashboards/system.libsonnet` |
//! | t/events    | `lib/linux/targets/events.libsonnet` (annotations), `lib/common.libsonnet` annotations |
//! | t/memory    | `lib/linux/targets/memory.libsonnet`, `dashboards/memory.libsonnet`    |
//! | t/disk      | `lib/linux/targets/disk.libsonnet`                                     |
//! | t/network   | `lib/linux/targets/network.libsonnet`, `lib/linux/panels/network.libsonnet` |
//! | vars        | `lib/linux/variables.libsonnet` (`varMetric='node_uname_info'`)         |
//!
//! Config defaults the selectors come from (`lib/linux/config.libsonnet`): `fsSelector:
//! fstype!=""`, `fsMountpointSelector: mountpoint!=""`, `diskDeviceSelector: device!=""`. In
//! PromQL an empty label value is the same as no label, so those labels must be non-empty.
//!
//! Deliberately NOT checked (each with the reason):
//! - recording-rule outputs (`instance:node_num_cpu:sum`, `instance:node_cpu_utilisation:rate5m`,
//!   `instance_device:node_disk_io_time_seconds:rate5m`, ...): computed by Prometheus from the raw
//!   series checked here; `ALERTS`: synthetic, from Prometheus.
//! - `node_systemd_unit_state{name,state}`, `node_systemd_service_restart_total{name}`
//!   (NodeSystemdServiceFailed / NodeSystemdServiceCrashlooping) and `node_systemd_units{state}`
//!   (`lib/common.libsonnet`): node_exporter's `systemd` collector is off by default (it needs
//!   D-Bus), so on a default node_exporter these alerts are silent too.
//! - `node_hwmon_temp_celsius{chip,sensor}` (NodeHardwareTemperatureHigh, hardware row): hwmon
//!   sensors we do not emulate, and the mixin gates it behind `enableHardware: false`.
//! - `node_network_transmit_multicast_total` (t/network "Multicast packets"): node_exporter does
//!   not export it on Linux (neither /proc/net/dev nor rtnl_link_stats64 has a transmit multicast
//!   counter; only the BSD/Darwin netdev collectors do), so that panel half is empty there too.
//! - `node_memory_total_bytes`, `node_memory_{internal,purgeable,wired,compressed}_bytes`: Darwin
//!   only (`platform == 'Darwin'` branches); everything under `lib/macos` and `lib/aix`.
//! - `NodeNetworkInterfaceFlapping` (`changes(node_network_up[2m])`) is kube-prometheus, not
//!   node-mixin; `node_network_up` is checked anyway because t/network reads it.
//! - `node_exporter_build_info` (the instance variable
//!   `label_values(node_exporter_build_info, instance)` of the classic nodes.json and use.json,
//!   `dashboards/node.libsonnet`, `use.libsonnet`, `use-node.libsonnet`): it describes the
//!   node_exporter binary itself (prometheus/common's version collector), not the host. automon
//!   describes its own binary as `automon_build_info`; the `lib/linux` dashboards select
//!   instances with `node_uname_info` (checked above) instead.
//!
//! Not checked *yet*: `node_textfile_scrape_error` (alert NodeTextFileCollectorScrapeError) comes
//! from the textfile collector (issue 6), written on another branch; it waits in
//! [`PENDING_TEXTFILE`] until that collector is merged.
//!
//! `process_max_fds` / `process_open_fds` (t/disk "file descriptors") are not `node_*` but the
//! disk dashboard reads them; like node_exporter's, automon's describe the exporter process.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Where a metric must be found.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    /// In the live `/metrics` of the daemon on this host (any Linux host has it).
    Live,
    /// In `tests/fixtures/host/golden.prom` (hardware CI hosts lack).
    Fixture,
    /// In at least one of the two (depends on the kernel build or the hardware).
    Either,
}

/// The `# TYPE` node_exporter gives the metric.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    Counter,
    Gauge,
    Untyped,
}

impl Ty {
    fn as_str(self) -> &'static str {
        match self {
            Ty::Counter => "counter",
            Ty::Gauge => "gauge",
            Ty::Untyped => "untyped",
        }
    }
}

use Src::{Either, Fixture, Live};
use Ty::{Counter, Gauge, Untyped};

/// One metric the mixin reads.
struct Need {
    metric: &'static str,
    /// Labels every sample must carry with a non-empty value. A trailing `?` means the label must
    /// be present but may be empty (node_exporter leaves it empty too, e.g. `duplex` on `lo`).
    labels: &'static [&'static str],
    src: Src,
    ty: Ty,
    /// Where in the mixin it is used.
    used_by: &'static str,
    /// node_exporter collector and data source that provide it (for the failure message).
    provider: &'static str,
}

const fn need(
    metric: &'static str,
    labels: &'static [&'static str],
    src: Src,
    ty: Ty,
    used_by: &'static str,
    provider: &'static str,
) -> Need {
    Need {
        metric,
        labels,
        src,
        ty,
        used_by,
        provider,
    }
}

const FS: &[&str] = &["device", "fstype", "mountpoint"];
const DEV: &[&str] = &["device"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
const NEEDS: &[Need] = &[
    // --- CPU and system ------------------------------------------------------------------------
    need("node_cpu_seconds_total", &["cpu", "mode"], Live, Counter,
         "rules instance:node_num_cpu:sum / instance:node_cpu_utilisation; alerts NodeCPUHighUsage, NodeSystemSaturation; nodes.json, t/cpu", "cpu: /proc/stat"),
    need("node_load1", NONE, Live, Gauge, "rules instance:node_load1_per_cpu:ratio; alert NodeSystemSaturation; nodes.json, t/system", "loadavg: /proc/loadavg"),
    need("node_load5", NONE, Live, Gauge, "nodes.json, t/system", "loadavg: /proc/loadavg"),
    need("node_load15", NONE, Live, Gauge, "nodes.json, t/system", "loadavg: /proc/loadavg"),
    need("node_boot_time_seconds", NONE, Live, Gauge, "t/system uptime, t/events reboot annotation, fleet.json", "stat: /proc/stat btime"),
    need("node_context_switches_total", NONE, Live, Counter, "t/system", "stat: /proc/stat ctxt"),
    need("node_intr_total", NONE, Live, Counter, "t/system", "stat: /proc/stat intr"),
    need("node_uname_info", &["sysname", "nodename", "release"], Live, Gauge,
         "vars (instance variable), nodes.json instance template sysname!=\"Darwin\", t/system hostname/kernel, kernel-update annotation", "uname: uname(2)"),
    need("node_os_info", &["pretty_name"], Either, Gauge, "t/system osInfo, fleet.json", "os: /etc/os-release"),
    need("node_time_zone_offset_seconds", &["time_zone"], Live, Gauge, "t/system timezone", "time: localtime"),
    need("node_time_seconds", NONE, Live, Gauge, "use.json cluster variable label_values(node_time_seconds, cluster)", "time: clock"),
    need("node_timex_offset_seconds", NONE, Live, Gauge, "alert NodeClockSkewDetected; t/system", "timex: adjtimex(2)"),
    need("node_timex_sync_status", NONE, Live, Gauge, "alert NodeClockNotSynchronising; t/system", "timex: adjtimex(2)"),
    need("node_timex_maxerror_seconds", NONE, Live, Gauge, "alert NodeClockNotSynchronising; t/system", "timex: adjtimex(2)"),
    need("node_timex_estimated_error_seconds", NONE, Live, Gauge, "t/system", "timex: adjtimex(2)"),

    // --- Memory --------------------------------------------------------------------------------
    need("node_memory_MemTotal_bytes", NONE, Live, Gauge, "rules instance:node_memory_utilisation:ratio; alert NodeMemoryHighUtilization; nodes.json, t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_MemAvailable_bytes", NONE, Live, Gauge, "rules; alert NodeMemoryHighUtilization; nodes.json, t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_MemFree_bytes", NONE, Live, Gauge, "rules; nodes.json, t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Buffers_bytes", NONE, Live, Gauge, "rules; nodes.json, t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Cached_bytes", NONE, Live, Gauge, "rules; nodes.json, t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Slab_bytes", NONE, Live, Gauge, "rules instance:node_memory_utilisation:ratio", "meminfo: /proc/meminfo"),
    need("node_memory_SwapTotal_bytes", NONE, Live, Gauge, "t/memory, lib/common memorySwapTotal", "meminfo: /proc/meminfo"),
    need("node_memory_Active_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Inactive_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Active_anon_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Inactive_anon_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Active_file_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Inactive_file_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Committed_AS_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_CommitLimit_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Mapped_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Shmem_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Writeback_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_WritebackTmp_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Dirty_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_VmallocChunk_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_VmallocTotal_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_VmallocUsed_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_SUnreclaim_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_SReclaimable_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_AnonPages_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Bounce_bytes", NONE, Live, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    // These lines exist only with CONFIG_TRANSPARENT_HUGEPAGE / CONFIG_HUGETLBFS / on x86.
    need("node_memory_AnonHugePages_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_ShmemHugePages_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_ShmemPmdMapped_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_HugePages_Total", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_HugePages_Free", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_HugePages_Rsvd", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_HugePages_Surp", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_Hugepagesize_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_DirectMap4k_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_DirectMap2M_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),
    need("node_memory_DirectMap1G_bytes", NONE, Either, Gauge, "t/memory", "meminfo: /proc/meminfo"),

    // --- vmstat (node_exporter exports these untyped) ------------------------------------------
    need("node_vmstat_pgmajfault", NONE, Live, Untyped, "rules instance:node_vmstat_pgmajfault:rate5m; alert NodeMemoryMajorPagesFaults; t/memory", "vmstat: /proc/vmstat"),
    need("node_vmstat_pgfault", NONE, Live, Untyped, "t/memory minor faults", "vmstat: /proc/vmstat"),
    need("node_vmstat_pgpgin", NONE, Live, Untyped, "t/memory", "vmstat: /proc/vmstat"),
    need("node_vmstat_pgpgout", NONE, Live, Untyped, "t/memory", "vmstat: /proc/vmstat"),
    need("node_vmstat_pswpin", NONE, Live, Untyped, "t/memory", "vmstat: /proc/vmstat"),
    need("node_vmstat_pswpout", NONE, Live, Untyped, "t/memory", "vmstat: /proc/vmstat"),
    need("node_vmstat_oom_kill", NONE, Live, Untyped, "t/events OOMkill annotation, t/memory", "vmstat: /proc/vmstat"),

    // --- Disks (diskDeviceSelector device!="") ---------------------------------------------------
    need("node_disk_io_time_seconds_total", DEV, Either, Counter, "rules instance_device:node_disk_io_time_seconds; nodes.json, t/disk, fleet.json", "diskstats: /proc/diskstats"),
    need("node_disk_io_time_weighted_seconds_total", DEV, Either, Counter, "rules; alert NodeDiskIOSaturation; t/disk", "diskstats: /proc/diskstats"),
    need("node_disk_read_bytes_total", DEV, Either, Counter, "nodes.json, t/disk", "diskstats: /proc/diskstats"),
    need("node_disk_written_bytes_total", DEV, Either, Counter, "nodes.json, t/disk", "diskstats: /proc/diskstats"),
    need("node_disk_reads_completed_total", DEV, Either, Counter, "t/disk", "diskstats: /proc/diskstats"),
    need("node_disk_writes_completed_total", DEV, Either, Counter, "t/disk", "diskstats: /proc/diskstats"),
    need("node_disk_read_time_seconds_total", DEV, Either, Counter, "t/disk", "diskstats: /proc/diskstats"),
    need("node_disk_write_time_seconds_total", DEV, Either, Counter, "t/disk", "diskstats: /proc/diskstats"),

    // --- Filesystems (fsSelector fstype!="", fsMountpointSelector mountpoint!="") ----------------
    need("node_filesystem_avail_bytes", FS, Live, Gauge, "alerts NodeFilesystemSpaceFillingUp / AlmostOutOfSpace; nodes.json, use.json, t/disk, fleet.json", "filesystem: statfs(2) on /proc/mounts"),
    need("node_filesystem_size_bytes", FS, Live, Gauge, "alerts NodeFilesystem*Space*; nodes.json, use.json, t/disk, fleet.json", "filesystem: statfs(2)"),
    need("node_filesystem_files_free", FS, Live, Gauge, "alerts NodeFilesystemFilesFillingUp / AlmostOutOfFiles; t/disk", "filesystem: statfs(2)"),
    need("node_filesystem_files", FS, Live, Gauge, "alerts NodeFilesystemFilesFillingUp / AlmostOutOfFiles; t/disk", "filesystem: statfs(2)"),
    need("node_filesystem_readonly", FS, Live, Gauge, "all NodeFilesystem* alerts; t/disk", "filesystem: mount options"),
    need("node_filesystem_device_error", FS, Live, Gauge, "t/disk", "filesystem: statfs(2) error"),
    need("process_max_fds", NONE, Live, Gauge, "t/disk file descriptors", "the exporter's own process collector"),
    need("process_open_fds", NONE, Live, Gauge, "t/disk file descriptors", "the exporter's own process collector"),

    // --- Network interfaces ----------------------------------------------------------------------
    need("node_network_receive_bytes_total", DEV, Live, Counter, "rules instance:node_network_receive_bytes_excluding_lo; nodes.json, t/network", "netdev: netlink / /proc/net/dev"),
    need("node_network_transmit_bytes_total", DEV, Live, Counter, "rules; nodes.json, t/network", "netdev"),
    need("node_network_receive_drop_total", DEV, Live, Counter, "rules instance:node_network_receive_drop_excluding_lo; t/network", "netdev"),
    need("node_network_transmit_drop_total", DEV, Live, Counter, "rules; t/network", "netdev"),
    need("node_network_receive_errs_total", DEV, Live, Counter, "alert NodeNetworkReceiveErrs; t/network, fleet.json", "netdev"),
    need("node_network_transmit_errs_total", DEV, Live, Counter, "alert NodeNetworkTransmitErrs; t/network, fleet.json", "netdev"),
    need("node_network_receive_packets_total", DEV, Live, Counter, "alert NodeNetworkReceiveErrs; t/network", "netdev"),
    need("node_network_transmit_packets_total", DEV, Live, Counter, "alert NodeNetworkTransmitErrs; t/network", "netdev"),
    need("node_network_receive_multicast_total", DEV, Live, Counter, "t/network", "netdev"),
    need("node_network_receive_fifo_total", DEV, Live, Counter, "t/network", "netdev"),
    need("node_network_transmit_fifo_total", DEV, Live, Counter, "t/network", "netdev"),
    need("node_network_receive_compressed_total", DEV, Live, Counter, "t/network", "netdev"),
    need("node_network_transmit_compressed_total", DEV, Live, Counter, "t/network", "netdev"),
    need("node_network_up", DEV, Live, Gauge, "t/network interfaces table", "netclass: /sys/class/net/*/operstate"),
    need("node_network_mtu_bytes", DEV, Live, Gauge, "t/network interfaces table", "netclass: /sys/class/net/*/mtu"),
    need("node_network_transmit_queue_length", DEV, Live, Gauge, "t/network interfaces table", "netclass: /sys/class/net/*/tx_queue_len"),
    need("node_network_info", &["device", "duplex?", "address?"], Live, Gauge, "t/network interfaces table (joins device, duplex, address)", "netclass: /sys/class/net/*"),
    // carrier is unreadable while an interface is down; speed only exists on real NICs.
    need("node_network_carrier", DEV, Either, Gauge, "t/network carrier status", "netclass: /sys/class/net/*/carrier"),
    need("node_network_speed_bytes", DEV, Either, Gauge, "t/network interfaces table", "netclass: /sys/class/net/*/speed"),
    // node_exporter only exports devices that have ARP entries.
    need("node_arp_entries", DEV, Either, Gauge, "t/network interfaces table", "arp: /proc/net/arp (or netlink neighbours)"),
    need("node_nf_conntrack_entries", NONE, Either, Gauge, "alert NodeHighNumberConntrackEntriesUsed; t/network", "conntrack: /proc/sys/net/netfilter/nf_conntrack_count"),
    need("node_nf_conntrack_entries_limit", NONE, Either, Gauge, "alert NodeHighNumberConntrackEntriesUsed; t/network", "conntrack: /proc/sys/net/netfilter/nf_conntrack_max"),
    need("node_softnet_processed_total", &["cpu"], Live, Counter, "t/network softnet", "softnet: /proc/net/softnet_stat"),
    need("node_softnet_dropped_total", &["cpu"], Live, Counter, "t/network softnet", "softnet: /proc/net/softnet_stat"),
    need("node_softnet_times_squeezed_total", &["cpu"], Live, Counter, "t/network softnet", "softnet: /proc/net/softnet_stat"),

    // --- Sockets (t/network "Sockets" row) -------------------------------------------------------
    need("node_sockstat_sockets_used", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_TCP_alloc", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_TCP_inuse", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_TCP_orphan", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_TCP_tw", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_TCP_mem", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_TCP_mem_bytes", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat (mem * page size)"),
    need("node_sockstat_UDP_inuse", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_UDP_mem", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_UDP_mem_bytes", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat (mem * page size)"),
    need("node_sockstat_UDPLITE_inuse", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_RAW_inuse", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    need("node_sockstat_FRAG_inuse", NONE, Live, Gauge, "t/network", "sockstat: /proc/net/sockstat"),
    // /proc/net/sockstat6 exists only with IPv6.
    need("node_sockstat_TCP6_inuse", NONE, Either, Gauge, "t/network", "sockstat: /proc/net/sockstat6"),
    need("node_sockstat_UDP6_inuse", NONE, Either, Gauge, "t/network", "sockstat: /proc/net/sockstat6"),
    need("node_sockstat_UDPLITE6_inuse", NONE, Either, Gauge, "t/network", "sockstat: /proc/net/sockstat6"),
    need("node_sockstat_RAW6_inuse", NONE, Either, Gauge, "t/network", "sockstat: /proc/net/sockstat6"),
    need("node_sockstat_FRAG6_inuse", NONE, Either, Gauge, "t/network", "sockstat: /proc/net/sockstat6"),

    // --- Protocol counters (t/network "Netstat" row); all match node_exporter's default
    //     --collector.netstat.fields, and node_exporter exports them untyped. -------------------
    need("node_netstat_IpExt_InOctets", NONE, Live, Untyped, "t/network", "netstat: /proc/net/netstat"),
    need("node_netstat_IpExt_OutOctets", NONE, Live, Untyped, "t/network", "netstat: /proc/net/netstat"),
    need("node_netstat_Tcp_InSegs", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Tcp_OutSegs", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Tcp_RetransSegs", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Tcp_InErrs", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Tcp_OutRsts", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_TcpExt_ListenOverflows", NONE, Live, Untyped, "t/network", "netstat: /proc/net/netstat"),
    need("node_netstat_TcpExt_ListenDrops", NONE, Live, Untyped, "t/network", "netstat: /proc/net/netstat"),
    need("node_netstat_TcpExt_TCPSynRetrans", NONE, Live, Untyped, "t/network", "netstat: /proc/net/netstat"),
    need("node_netstat_Udp_InDatagrams", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Udp_OutDatagrams", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Udp_InErrors", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Udp_NoPorts", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Udp_RcvbufErrors", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Udp_SndbufErrors", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_UdpLite_InErrors", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Icmp_InMsgs", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Icmp_OutMsgs", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    need("node_netstat_Icmp_InErrors", NONE, Live, Untyped, "t/network", "netstat: /proc/net/snmp"),
    // /proc/net/snmp6 exists only with IPv6.
    need("node_netstat_Udp6_InDatagrams", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Udp6_OutDatagrams", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Udp6_InErrors", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Udp6_NoPorts", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Udp6_RcvbufErrors", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Udp6_SndbufErrors", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Icmp6_InMsgs", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Icmp6_OutMsgs", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),
    need("node_netstat_Icmp6_InErrors", NONE, Either, Untyped, "t/network", "netstat: /proc/net/snmp6"),

    // --- Software RAID and bonding: only in the fixture tree ------------------------------------
    need("node_md_disks", &["device", "state"], Fixture, Gauge, "alerts NodeRAIDDegraded (state=\"active\"), NodeRAIDDiskFailure (state=\"failed\")", "mdadm: /proc/mdstat"),
    need("node_md_disks_required", DEV, Fixture, Gauge, "alert NodeRAIDDegraded", "mdadm: /proc/mdstat"),
    need("node_bonding_slaves", &["master"], Fixture, Gauge, "alert NodeBondingDegraded", "bonding: /sys/class/net/*/bonding/slaves"),
    need("node_bonding_active", &["master"], Fixture, Gauge, "alert NodeBondingDegraded", "bonding: /sys/class/net/*/bonding/slaves + operstate"),
];

/// PROVIDED BY THE TEXTFILE COLLECTOR (issue 6), which is being written on another branch.
/// NOT CHECKED YET: no test reads this list except the duplicate check. Once the textfile
/// collector is merged, move these entries back into [`NEEDS`] and delete this list.
#[rustfmt::skip]
const PENDING_TEXTFILE: &[Need] = &[
    need("node_textfile_scrape_error", NONE, Live, Gauge, "alert NodeTextFileCollectorScrapeError",
         "textfile (on by default; always exports this gauge, 0 with no directory configured)"),
];

/// Label values the expressions select on: without a sample carrying them the expression is
/// empty.
#[rustfmt::skip]
const VALUES: &[(&str, &str, &str, Src, &str)] = &[
    ("node_cpu_seconds_total", "mode", "idle", Live, "rules/alerts mode=\"idle\""),
    ("node_cpu_seconds_total", "mode", "iowait", Live, "rules mode=~\"idle|iowait|steal\", NodeCPUHighUsage mode!~\"idle|iowait\""),
    ("node_cpu_seconds_total", "mode", "steal", Live, "rules mode=~\"idle|iowait|steal\""),
    ("node_cpu_seconds_total", "mode", "user", Live, "t/cpu by mode"),
    ("node_cpu_seconds_total", "mode", "system", Live, "t/cpu by mode"),
    ("node_uname_info", "sysname", "Linux", Live, "nodes.json instance template sysname!=\"Darwin\""),
    ("node_md_disks", "state", "active", Fixture, "NodeRAIDDegraded node_md_disks{state=\"active\"}"),
    ("node_md_disks", "state", "failed", Fixture, "NodeRAIDDiskFailure node_md_disks{state=\"failed\"}"),
];

/// How the two sides of a binary operator are matched.
#[derive(Clone, Copy)]
enum Matching {
    /// Default one-to-one matching, or `ignoring(...)`.
    Ignoring(&'static [&'static str]),
    /// `on(...)` (target labels such as `job`/`instance` are added by Prometheus, not here).
    On(&'static [&'static str]),
}

/// A binary expression from the mixin: it only yields results if the two sides' label sets
/// line up, which is what this checks (every left series finds exactly one right series).
struct Join {
    expr: &'static str,
    left: (&'static str, &'static [(&'static str, &'static str)]),
    right: (&'static str, &'static [(&'static str, &'static str)]),
    /// `count without (...)` applied to the right side first.
    right_without: Option<&'static [&'static str]>,
    matching: Matching,
    group_left: bool,
    src: Src,
}

const fn join(
    expr: &'static str,
    left: (&'static str, &'static [(&'static str, &'static str)]),
    right: (&'static str, &'static [(&'static str, &'static str)]),
    matching: Matching,
    src: Src,
) -> Join {
    Join {
        expr,
        left,
        right,
        right_without: None,
        matching,
        group_left: false,
        src,
    }
}

const IGN0: Matching = Matching::Ignoring(&[]);

#[rustfmt::skip]
const JOINS: &[Join] = &[
    join("node_filesystem_avail_bytes / node_filesystem_size_bytes (NodeFilesystemSpaceFillingUp, AlmostOutOfSpace)",
         ("node_filesystem_avail_bytes", &[]), ("node_filesystem_size_bytes", &[]), IGN0, Live),
    join("... and node_filesystem_readonly == 0 (every NodeFilesystem* alert)",
         ("node_filesystem_avail_bytes", &[]), ("node_filesystem_readonly", &[]), IGN0, Live),
    join("node_filesystem_files_free / node_filesystem_files (NodeFilesystemFilesFillingUp, AlmostOutOfFiles)",
         ("node_filesystem_files_free", &[]), ("node_filesystem_files", &[]), IGN0, Live),
    join("rate(node_network_receive_errs_total) / rate(node_network_receive_packets_total) (NodeNetworkReceiveErrs)",
         ("node_network_receive_errs_total", &[]), ("node_network_receive_packets_total", &[]), IGN0, Live),
    join("rate(node_network_transmit_errs_total) / rate(node_network_transmit_packets_total) (NodeNetworkTransmitErrs)",
         ("node_network_transmit_errs_total", &[]), ("node_network_transmit_packets_total", &[]), IGN0, Live),
    join("node_nf_conntrack_entries / node_nf_conntrack_entries_limit (NodeHighNumberConntrackEntriesUsed)",
         ("node_nf_conntrack_entries", &[]), ("node_nf_conntrack_entries_limit", &[]), IGN0, Either),
    join("node_filefd_allocated * 100 / node_filefd_maximum (NodeFileDescriptorLimit)",
         ("node_filefd_allocated", &[]), ("node_filefd_maximum", &[]), IGN0, Live),
    join("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes (NodeMemoryHighUtilization, rules)",
         ("node_memory_MemAvailable_bytes", &[]), ("node_memory_MemTotal_bytes", &[]), IGN0, Live),
    join("min_over_time(node_timex_sync_status[5m]) == 0 and node_timex_maxerror_seconds >= 16 (NodeClockNotSynchronising)",
         ("node_timex_sync_status", &[]), ("node_timex_maxerror_seconds", &[]), IGN0, Live),
    Join {
        expr: "node_load1 / count without (cpu, mode) (node_cpu_seconds_total{mode=\"idle\"}) (NodeSystemSaturation, instance:node_load1_per_cpu:ratio)",
        left: ("node_load1", &[]),
        right: ("node_cpu_seconds_total", &[("mode", "idle")]),
        right_without: Some(&["cpu", "mode"]),
        matching: IGN0,
        group_left: false,
        src: Live,
    },
    Join {
        expr: "sum without (mode) (rate(node_cpu_seconds_total{mode=~\"idle|iowait|steal\"})) / ignoring(cpu) group_left count without (cpu, mode) (node_cpu_seconds_total{mode=\"idle\"}) (CPU usage per core)",
        left: ("node_cpu_seconds_total", &[("mode", "idle")]),
        right: ("node_cpu_seconds_total", &[("mode", "idle")]),
        right_without: Some(&["cpu", "mode"]),
        matching: Matching::Ignoring(&["cpu", "mode"]),
        group_left: true,
        src: Live,
    },
    join("irate(node_disk_read_time_seconds_total) / irate(node_disk_reads_completed_total) (t/disk)",
         ("node_disk_read_time_seconds_total", &[]), ("node_disk_reads_completed_total", &[]), IGN0, Either),
    join("irate(node_disk_write_time_seconds_total) / irate(node_disk_writes_completed_total) (t/disk)",
         ("node_disk_write_time_seconds_total", &[]), ("node_disk_writes_completed_total", &[]), IGN0, Either),
    join("node_md_disks_required - ignoring (state) (node_md_disks{state=\"active\"}) (NodeRAIDDegraded)",
         ("node_md_disks_required", &[]), ("node_md_disks", &[("state", "active")]), Matching::Ignoring(&["state"]), Fixture),
    join("node_bonding_slaves - node_bonding_active (NodeBondingDegraded)",
         ("node_bonding_slaves", &[]), ("node_bonding_active", &[]), IGN0, Fixture),
    Join {
        expr: "node_uname_info * on (job, instance) group_left(pretty_name) node_os_info (t/system osInfoCombined)",
        left: ("node_uname_info", &[]),
        right: ("node_os_info", &[]),
        right_without: None,
        matching: Matching::On(&[]),
        group_left: true,
        src: Either,
    },
];

// ------------------------------------------------------------------------------------------------
// Exposition parsing

type Labels = BTreeMap<String, String>;

#[derive(Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, Vec<Labels>>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                if let (Some(name), Some(ty)) = (it.next(), it.next()) {
                    e.types.insert(name.to_owned(), ty.to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name, labels) =
                parse_sample(line).unwrap_or_else(|| panic!("unparsable sample line: {line:?}"));
            e.samples.entry(name).or_default().push(labels);
        }
        e
    }

    fn has(&self, metric: &str) -> bool {
        self.samples.get(metric).is_some_and(|s| !s.is_empty())
    }

    fn series(&self, metric: &str, filter: &[(&str, &str)]) -> Vec<&Labels> {
        self.samples
            .get(metric)
            .map(|v| {
                v.iter()
                    .filter(|l| {
                        filter
                            .iter()
                            .all(|(k, want)| l.get(*k).map(String::as_str).unwrap_or("") == *want)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses `name{a="x",b="y"} value [timestamp]` into the name and labels.
fn parse_sample(line: &str) -> Option<(String, Labels)> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = Labels::new();
    if line[name_end..].starts_with('{') {
        let mut chars = line[name_end + 1..].chars().peekable();
        loop {
            while chars.peek() == Some(&',') || chars.peek() == Some(&' ') {
                chars.next();
            }
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let mut key = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()? != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key.trim().to_owned(), value);
        }
        let rest: String = chars.collect();
        rest.split_whitespace().next()?.parse::<f64>().ok()?;
    } else {
        line[name_end..]
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()?;
    }
    Some((name, labels))
}

// ------------------------------------------------------------------------------------------------
// The two expositions

/// `/metrics` of the real daemon on this host, scraped once for all tests in this file (after
/// `ready:`, i.e. after every collector has reported once).
fn live() -> &'static Exposition {
    static LIVE: OnceLock<Exposition> = OnceLock::new();
    LIVE.get_or_init(|| {
        let d = common::start("");
        Exposition::parse(&d.metrics())
    })
}

/// The fixture tree's exposition (kept equal to the collectors' output by `tests/golden.rs`).
fn fixture() -> &'static Exposition {
    static FIXTURE: OnceLock<Exposition> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = common::fixtures().join("host/golden.prom");
        Exposition::parse(&std::fs::read_to_string(&path).expect("golden.prom"))
    })
}

fn sources() -> [(&'static str, &'static Exposition); 2] {
    [("live /metrics", live()), ("golden.prom", fixture())]
}

/// The exposition an expression is evaluated on.
fn pick(src: Src, metric: &str) -> Option<(&'static str, &'static Exposition)> {
    match src {
        Live => Some(("live /metrics", live())),
        Fixture => Some(("golden.prom", fixture())),
        Either => sources().into_iter().find(|(_, e)| e.has(metric)),
    }
}

fn fail(problems: &[String], what: &str) {
    if !problems.is_empty() {
        panic!(
            "{} {what}:\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Tests

#[test]
fn table_has_no_duplicates() {
    let mut seen = BTreeSet::new();
    // The pending list is included so that moving an entry back into NEEDS without deleting it
    // here is caught.
    for n in NEEDS.iter().chain(PENDING_TEXTFILE) {
        assert!(seen.insert(n.metric), "{} listed twice", n.metric);
    }
}

#[test]
fn every_mixin_metric_is_exported() {
    let mut missing = Vec::new();
    for n in NEEDS {
        let found = match n.src {
            Live => live().has(n.metric),
            Fixture => fixture().has(n.metric),
            Either => live().has(n.metric) || fixture().has(n.metric),
        };
        if !found {
            let where_ = match n.src {
                Live => "live /metrics",
                Fixture => "golden.prom",
                Either => "live /metrics or golden.prom",
            };
            missing.push(format!(
                "{} not in {where_} (used by: {}; node_exporter: {})",
                n.metric, n.used_by, n.provider
            ));
        }
    }
    fail(&missing, "node-mixin metrics missing");
}

#[test]
fn every_sample_carries_the_labels_the_mixin_uses() {
    let mut problems = Vec::new();
    for n in NEEDS {
        for (src_name, e) in sources() {
            for labels in e.series(n.metric, &[]) {
                for spec in n.labels {
                    let (key, may_be_empty) = match spec.strip_suffix('?') {
                        Some(k) => (k, true),
                        None => (*spec, false),
                    };
                    let bad = match labels.get(key) {
                        None => true,
                        Some(v) => v.is_empty() && !may_be_empty,
                    };
                    if bad {
                        problems.push(format!(
                            "{src_name}: {}{labels:?} lacks a {}label {key:?} (used by: {})",
                            n.metric,
                            if may_be_empty { "" } else { "non-empty " },
                            n.used_by
                        ));
                    }
                }
            }
        }
    }
    fail(&problems, "samples without the labels the mixin relies on");
}

#[test]
fn every_metric_has_node_exporters_type() {
    let mut problems = Vec::new();
    for n in NEEDS {
        for (src_name, e) in sources() {
            if !e.has(n.metric) {
                continue;
            }
            match e.types.get(n.metric) {
                Some(t) if t == n.ty.as_str() => {}
                other => problems.push(format!(
                    "{src_name}: # TYPE {} is {other:?}, node_exporter's is {:?}",
                    n.metric,
                    n.ty.as_str()
                )),
            }
        }
    }
    fail(&problems, "type mismatches");
}

#[test]
fn label_values_the_mixin_selects_on_exist() {
    let mut problems = Vec::new();
    for &(metric, label, value, src, why) in VALUES {
        let Some((src_name, e)) = pick(src, metric) else {
            problems.push(format!("{metric} not found anywhere ({why})"));
            continue;
        };
        if e.series(metric, &[(label, value)]).is_empty() {
            problems.push(format!(
                "{src_name}: no {metric}{{{label}=\"{value}\"}} ({why})"
            ));
        }
    }
    fail(&problems, "selected label values missing");
}

/// The label signature a series is matched on.
fn signature(labels: &Labels, m: Matching) -> Vec<(String, String)> {
    labels
        .iter()
        .filter(|(k, v)| {
            !v.is_empty()
                && match m {
                    Matching::Ignoring(ig) => !ig.contains(&k.as_str()),
                    Matching::On(on) => on.contains(&k.as_str()),
                }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn mixin_binary_expressions_match_series() {
    let mut problems = Vec::new();
    for j in JOINS {
        let Some((src_name, e)) = pick(j.src, j.left.0) else {
            problems.push(format!("{}: {} not found anywhere", j.expr, j.left.0));
            continue;
        };
        let left = e.series(j.left.0, j.left.1);
        if left.is_empty() {
            problems.push(format!("{src_name}: {}: no {} series", j.expr, j.left.0));
            continue;
        }
        let mut right: Vec<Labels> = e
            .series(j.right.0, j.right.1)
            .into_iter()
            .cloned()
            .collect();
        if let Some(without) = j.right_without {
            let agg: BTreeSet<Labels> = right
                .into_iter()
                .map(|mut l| {
                    l.retain(|k, _| !without.contains(&k.as_str()));
                    l
                })
                .collect();
            right = agg.into_iter().collect();
        }
        let mut right_sigs = BTreeSet::new();
        for r in &right {
            if !right_sigs.insert(signature(r, j.matching)) {
                problems.push(format!(
                    "{src_name}: {}: several {} series match {:?} (Prometheus fails: duplicate series)",
                    j.expr,
                    j.right.0,
                    signature(r, j.matching)
                ));
            }
        }
        let mut left_sigs = BTreeSet::new();
        for l in &left {
            let sig = signature(l, j.matching);
            if !j.group_left && !left_sigs.insert(sig.clone()) {
                problems.push(format!(
                    "{src_name}: {}: several {} series match {sig:?} (Prometheus fails: many-to-many)",
                    j.expr, j.left.0
                ));
            }
            if !right_sigs.contains(&sig) {
                problems.push(format!(
                    "{src_name}: {}: {}{l:?} has no {} partner",
                    j.expr, j.left.0, j.right.0
                ));
            }
        }
    }
    fail(
        &problems,
        "mixin expressions that would return nothing or fail",
    );
}

#[test]
fn exposition_parser_handles_escapes() {
    let (name, labels) =
        parse_sample(r##"node_uname_info{version="#1 SMP \"x\", y",machine="x86_64"} 1"##).unwrap();
    assert_eq!(name, "node_uname_info");
    assert_eq!(labels["version"], "#1 SMP \"x\", y");
    assert_eq!(labels["machine"], "x86_64");
    let (name, labels) = parse_sample("node_load1 0.5 1700000000000").unwrap();
    assert_eq!(name, "node_load1");
    assert!(labels.is_empty());
}
