//! Configuration: the typed settings, their embedded defaults, and (in [`load`](mod@load))
//! reading TOML files with drop-ins into them with errors that name file, line and key.
//!
//! The structs here are the *raw* shape of the TOML. They deliberately do not use
//! `deny_unknown_fields`: the loader detects unknown keys itself so that it can report all of
//! them at once, each with its position.

pub mod alerting;
pub mod load;
pub mod receivers;
pub mod repair;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use load::{load, parse_str, ConfigError, ConfigErrors, ConfigSource, LoadedConfig};

/// Default listen address: loopback only, so nothing is exposed until an operator decides to.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9787";
/// Default main config file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/automon/automon.toml";

/// A duration written as a human string (`"15s"`, `"5m"`, `"1h30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HumanDurationVisitor)
    }
}

/// Accepts strings, and turns the common mistake `interval = 15` into an error that says what
/// to write instead of serde's "invalid type: integer".
struct HumanDurationVisitor;

impl serde::de::Visitor<'_> for HumanDurationVisitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration string such as \"15s\" or \"5m\"")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HumanDuration, E> {
        parse_duration(s).map(HumanDuration).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<HumanDuration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write a string such as \"{n}s\" or \"{n}ms\""
        )))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<HumanDuration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write a string such as \"{n}s\" or \"{n}ms\""
        )))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<HumanDuration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write a string such as \"{n}s\""
        )))
    }
}

/// Parses `"15s"`, `"500ms"`, `"5m"`, `"1h30m"`, `"2d"`. A bare number is rejected because
/// "15" could mean seconds or milliseconds and guessing wrong is a silent misconfiguration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. \"15s\" or \"5m\"".into());
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "duration {s:?} has no unit; write e.g. \"{t}s\" or \"{t}ms\""
        ));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration {s:?}: {e} (write e.g. \"15s\", \"5m\", \"1h\")"))
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Log level filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing filter
    /// directive). `AUTOMON_LOG` overrides it.
    pub log_level: Option<String>,
    /// Where the daemon keeps its database; default `$STATE_DIRECTORY`, else the user's state
    /// directory.
    pub data_dir: Option<PathBuf>,
    /// HTTP endpoint settings.
    pub http: HttpConfig,
    /// Roots of the host filesystems the collectors read.
    pub paths: PathsConfig,
    /// Collector settings.
    pub collectors: CollectorsConfig,
    /// Local time-series storage.
    pub storage: StorageConfig,
    /// Query limits of the HTTP API and `automon query`.
    pub query: QueryConfig,
    /// Alert rules, routing, receivers and the notification outbox.
    pub alerting: alerting::AlertingConfig,
    /// Auto-repair rules, their limits and allowlists.
    pub repair: repair::RepairConfig,
}

/// A size in bytes, written as an integer or a string with a unit (`"500MB"`, `"1GiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Parses `"1GiB"`, `"500MB"`, `"64KiB"`, `"1024"`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}; write e.g. \"512MiB\" or \"1GiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        u => {
            return Err(format!(
                "unknown size unit {u:?} in {s:?}; use B, KB, MB, GB, KiB, MiB, GiB"
            ))
        }
    };
    Ok((n * mult as f64) as u64)
}

/// A byte count for people: `512 B`, `4.0 KiB`, `340 MiB`, `1.5 GiB` (binary units, one
/// decimal below 10).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size such as \"1GiB\" or a number of bytes")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("size must not be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageConfig {
    /// Store what is collected (off: only `/metrics` serves the latest values).
    pub enabled: bool,
    /// How often recent samples reach disk; a crash loses at most this much.
    pub flush_interval: HumanDuration,
    /// Retention of raw samples.
    pub retention_raw: HumanDuration,
    /// Retention of 5-minute rollups.
    pub retention_5m: HumanDuration,
    /// Retention of 1-hour rollups.
    pub retention_1h: HumanDuration,
    /// Cap on the database size; the oldest data is dropped first.
    pub max_size: ByteSize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            enabled: true,
            flush_interval: HumanDuration(Duration::from_secs(1)),
            retention_raw: HumanDuration(Duration::from_secs(14 * 86_400)),
            retention_5m: HumanDuration(Duration::from_secs(90 * 86_400)),
            retention_1h: HumanDuration(Duration::from_secs(730 * 86_400)),
            max_size: ByteSize(1 << 30),
        }
    }
}

/// `[query]`: limits of one query, for `/api/v1/query*` and `automon query`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct QueryConfig {
    /// Samples (or rollup buckets) loaded plus points returned by one query.
    pub max_points: usize,
    /// Series one query may load.
    pub max_series: usize,
    /// Wall-clock budget of one query (`http.request_timeout` also bounds API queries).
    pub timeout: HumanDuration,
}

impl Default for QueryConfig {
    /// Prometheus' defaults (50 million samples, 2 minutes) and 100,000 series.
    fn default() -> Self {
        QueryConfig {
            max_points: 50_000_000,
            max_series: 100_000,
            timeout: HumanDuration(Duration::from_secs(120)),
        }
    }
}

/// `[http]`
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpConfig {
    /// Socket address to listen on.
    pub listen: String,
    /// API key required as `Authorization: Bearer <key>` on every endpoint except `/health`.
    pub api_key: Option<String>,
    /// File holding the API key (trailing newline ignored).
    pub api_key_file: Option<PathBuf>,
    /// Explicitly allow a non-loopback listener without an API key.
    pub allow_unauthenticated: bool,
    /// Upper bound on handling one request.
    pub request_timeout: HumanDuration,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at the same time; more wait.
    pub max_concurrent_requests: usize,
}

/// Redacts the API key so that debug output and logs never carry the secret.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_file", &self.api_key_file)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN.into(),
            api_key: None,
            api_key_file: None,
            allow_unauthenticated: false,
            request_timeout: HumanDuration(Duration::from_secs(30)),
            max_body_bytes: 1024 * 1024,
            max_concurrent_requests: 64,
        }
    }
}

/// `[paths]`: mount points of the host's pseudo filesystems, so collectors can run on fixture
/// trees or, in a container, on the host mounted at `/host`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct PathsConfig {
    /// procfs mount point.
    pub procfs: PathBuf,
    /// sysfs mount point.
    pub sysfs: PathBuf,
    /// Root of the host filesystem (prefix for mount points).
    pub rootfs: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
        }
    }
}

/// Settings every collector has.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct BasicCollectorConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval; default `collectors.default_interval`.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection; default `collectors.default_timeout`, capped at the interval.
    pub timeout: Option<HumanDuration>,
}

impl Default for BasicCollectorConfig {
    fn default() -> Self {
        BasicCollectorConfig {
            enabled: true,
            interval: None,
            timeout: None,
        }
    }
}

/// `[collectors.filesystem]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct FilesystemConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection.
    pub timeout: Option<HumanDuration>,
    /// Mount points matching this regex (anchored by the author) are skipped.
    pub mount_points_exclude: String,
    /// Filesystem types matching this regex are skipped.
    pub fs_types_exclude: String,
    /// How long one `statfs` may take before the mount is reported stuck and skipped until it
    /// answers again (a dead NFS server must not hang the collector).
    pub stat_timeout: HumanDuration,
}

/// node_exporter's defaults, so the same mounts are reported.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's defaults for pseudo filesystems.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            enabled: true,
            interval: None,
            timeout: None,
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.into(),
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.into(),
            stat_timeout: HumanDuration(Duration::from_secs(5)),
        }
    }
}

/// node_exporter's diskstats default: partitions and virtual devices are skipped so that
/// I/O is not counted twice.
pub const DEFAULT_DISK_EXCLUDE: &str = "^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";

/// `[collectors.diskstats]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct DiskstatsConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection.
    pub timeout: Option<HumanDuration>,
    /// Devices matching this regex are skipped (empty: none).
    pub device_exclude: String,
    /// If set, only devices matching this regex are reported.
    pub device_include: Option<String>,
}

impl Default for DiskstatsConfig {
    fn default() -> Self {
        DiskstatsConfig {
            enabled: true,
            interval: None,
            timeout: None,
            device_exclude: DEFAULT_DISK_EXCLUDE.into(),
            device_include: None,
        }
    }
}

/// `[collectors.netdev]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct NetdevConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection.
    pub timeout: Option<HumanDuration>,
    /// Devices matching this regex are skipped (empty: none).
    pub device_exclude: String,
    /// If set, only devices matching this regex are reported.
    pub device_include: Option<String>,
}

impl Default for NetdevConfig {
    fn default() -> Self {
        NetdevConfig {
            enabled: true,
            interval: None,
            timeout: None,
            device_exclude: String::new(),
            device_include: None,
        }
    }
}

/// `[collectors.vmstat]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct VmstatConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection.
    pub timeout: Option<HumanDuration>,
    /// Fields of /proc/vmstat to export (regex), node_exporter's default set.
    pub fields: String,
}

/// node_exporter's default vmstat field selection.
pub const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

impl Default for VmstatConfig {
    fn default() -> Self {
        VmstatConfig {
            enabled: true,
            interval: None,
            timeout: None,
            fields: DEFAULT_VMSTAT_FIELDS.into(),
        }
    }
}

/// `[collectors.netstat]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct NetstatConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection.
    pub timeout: Option<HumanDuration>,
    /// `<Protocol>_<Field>` names from /proc/net/{netstat,snmp,snmp6} to export (regex),
    /// node_exporter's default set.
    pub fields: String,
}

/// node_exporter's default `--collector.netstat.fields`: the counters its dashboards and
/// alerts read, out of the several hundred the kernel exports.
pub const DEFAULT_NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

impl Default for NetstatConfig {
    fn default() -> Self {
        NetstatConfig {
            enabled: true,
            interval: None,
            timeout: None,
            fields: DEFAULT_NETSTAT_FIELDS.into(),
        }
    }
}

/// Where the textfile collector looks by default (node_exporter's packages use
/// `/var/lib/prometheus/node-exporter`; ours lives under automon's state directory).
pub const DEFAULT_TEXTFILE_DIRECTORY: &str = "/var/lib/automon/textfile";

/// `[collectors.textfile]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct TextfileConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection.
    pub timeout: Option<HumanDuration>,
    /// Directory whose `*.prom` files are read. Absolute and used as is, not under
    /// `paths.rootfs`, like node_exporter's `--collector.textfile.directory`.
    pub directory: PathBuf,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        TextfileConfig {
            enabled: true,
            interval: None,
            timeout: None,
            directory: DEFAULT_TEXTFILE_DIRECTORY.into(),
        }
    }
}

/// `[collectors.kubernetes]`: the node's pods and usage from the kubelet and the API server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct KubernetesConfig {
    /// Whether the collector runs (off by default: most hosts are not Kubernetes nodes).
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection (also each request's timeout).
    pub timeout: Option<HumanDuration>,
    /// This node's name; default `NODE_NAME` from the environment, else the host name.
    pub node_name: Option<String>,
    /// A kubeconfig file to use instead of the pod's service account.
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig; default its `current-context`.
    pub kubeconfig_context: Option<String>,
    /// API server URL; default from `KUBERNETES_SERVICE_HOST`/`_PORT` (in a pod) or the
    /// kubeconfig's cluster.
    pub api_url: Option<String>,
    /// Bearer token file; default the service account's, re-read when it changes.
    pub token_file: Option<PathBuf>,
    /// Cluster CA file; default the service account's `ca.crt`.
    pub ca_file: Option<PathBuf>,
    /// Ask the API server for this node's pods and the node object.
    pub api_enabled: bool,
    /// Ask the kubelet's Summary API for usage.
    pub kubelet_enabled: bool,
    /// Kubelet URL; default `https://<node_name>:10250`.
    pub kubelet_url: Option<String>,
    /// CA for the kubelet's serving certificate; default the cluster CA.
    pub kubelet_ca_file: Option<PathBuf>,
    /// Do not verify the kubelet's certificate (self-signed kubelet certificates, as in
    /// minikube and kind). Explicit because it lets anyone on the path read the token.
    pub kubelet_insecure_skip_tls_verify: bool,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            enabled: false,
            interval: None,
            timeout: None,
            node_name: None,
            kubeconfig: None,
            kubeconfig_context: None,
            api_url: None,
            token_file: None,
            ca_file: None,
            api_enabled: true,
            kubelet_enabled: true,
            kubelet_url: None,
            kubelet_ca_file: None,
            kubelet_insecure_skip_tls_verify: false,
        }
    }
}

/// `[collectors]`: one table per collector.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct CollectorsConfig {
    /// Interval of collectors that set none.
    pub default_interval: HumanDuration,
    /// Deadline of collectors that set none.
    pub default_timeout: HumanDuration,
    /// `node_cpu_seconds_total` and friends from /proc/stat.
    pub cpu: BasicCollectorConfig,
    /// Boot time, context switches, forks, interrupts, running/blocked processes.
    pub stat: BasicCollectorConfig,
    /// /proc/meminfo.
    pub memory: BasicCollectorConfig,
    /// /proc/loadavg.
    pub load: BasicCollectorConfig,
    /// /proc/pressure (PSI).
    pub pressure: BasicCollectorConfig,
    /// /proc/diskstats.
    pub diskstats: DiskstatsConfig,
    /// Mounted filesystems' sizes via statfs.
    pub filesystem: FilesystemConfig,
    /// /proc/net/dev.
    pub netdev: NetdevConfig,
    /// Protocol counters from /proc/net/{netstat,snmp,snmp6}.
    pub netstat: NetstatConfig,
    /// Socket counts from /proc/net/sockstat{,6}.
    pub sockstat: BasicCollectorConfig,
    /// Per-CPU packet processing from /proc/net/softnet_stat.
    pub softnet: BasicCollectorConfig,
    /// ARP entries per device from /proc/net/arp.
    pub arp: BasicCollectorConfig,
    /// /proc/sys/fs/file-nr.
    pub filefd: BasicCollectorConfig,
    /// nf_conntrack counters.
    pub conntrack: BasicCollectorConfig,
    /// Kernel clock discipline (adjtimex).
    pub timex: BasicCollectorConfig,
    /// /proc/vmstat.
    pub vmstat: VmstatConfig,
    /// Software RAID from /proc/mdstat (reports nothing when absent).
    pub mdadm: BasicCollectorConfig,
    /// Bonding interfaces from /sys/class/net (reports nothing when absent).
    pub bonding: BasicCollectorConfig,
    /// `node_time_seconds`.
    pub time: BasicCollectorConfig,
    /// `node_os_info` from /etc/os-release.
    pub os: BasicCollectorConfig,
    /// `node_uname_info`.
    pub uname: BasicCollectorConfig,
    /// `*.prom` files written by scripts (node_exporter's textfile convention).
    pub textfile: TextfileConfig,
    /// Quantum device calibration data (Qiskit `BackendProperties` JSON); off by default.
    pub quantum: QuantumConfig,
    /// Commands whose output in the Prometheus text format becomes metrics; off by default.
    pub exec: ExecConfig,
    /// Kubernetes node: kubelet Summary API and API-server objects (off by default).
    pub kubernetes: KubernetesConfig,
    /// TCP and HTTP(S) probes of configured targets (runs when targets are configured).
    pub probe: ProbeConfig,
    /// Count, CPU and memory of named process groups from /proc (off by default).
    pub process: ProcessConfig,
    /// State, restarts and start time of systemd units over D-Bus (off by default).
    pub systemd: SystemdConfig,
}

impl Default for CollectorsConfig {
    fn default() -> Self {
        CollectorsConfig {
            default_interval: HumanDuration(Duration::from_secs(15)),
            default_timeout: HumanDuration(Duration::from_secs(10)),
            cpu: Default::default(),
            stat: Default::default(),
            memory: Default::default(),
            load: Default::default(),
            pressure: Default::default(),
            diskstats: Default::default(),
            filesystem: Default::default(),
            netdev: Default::default(),
            netstat: Default::default(),
            sockstat: Default::default(),
            softnet: Default::default(),
            arp: Default::default(),
            filefd: Default::default(),
            conntrack: Default::default(),
            timex: Default::default(),
            vmstat: Default::default(),
            mdadm: Default::default(),
            bonding: Default::default(),
            time: Default::default(),
            os: Default::default(),
            uname: Default::default(),
            textfile: Default::default(),
            quantum: Default::default(),
            exec: Default::default(),
            kubernetes: Default::default(),
            probe: Default::default(),
            process: Default::default(),
            systemd: Default::default(),
        }
    }
}

/// `[collectors.quantum]`: calibration data of quantum devices.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct QuantumConfig {
    /// Whether the collector runs (off by default: most hosts have no quantum device).
    pub enabled: bool,
    /// Collection interval. Calibrations change hourly at most; `"5m"` is plenty.
    pub interval: Option<HumanDuration>,
    /// Deadline for one collection (all devices).
    pub timeout: Option<HumanDuration>,
    /// The devices, one `[[collectors.quantum.devices]]` table each.
    pub devices: Vec<QuantumDeviceConfig>,
}

/// `[[collectors.quantum.devices]]`: one device and where its `BackendProperties` document is.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct QuantumDeviceConfig {
    /// The `device` label; fixed in the config so that rules and dashboards do not depend on
    /// what the document calls itself.
    pub name: String,
    /// A local file written by the lab's control system or a cron job (absolute).
    pub path: Option<PathBuf>,
    /// An `https://` URL returning the same document (`http://` only without a token).
    pub url: Option<String>,
    /// File holding a bearer token for `url`, re-read on every fetch so rotation needs no
    /// reload (absolute).
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for `url` instead of the built-in web roots
    /// (absolute); for vendor or lab endpoints behind a private CA.
    pub ca_file: Option<PathBuf>,
}

/// `[collectors.probe]`: TCP connect and HTTP(S) GET checks.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProbeConfig {
    /// Whether the collector runs; unset means "when at least one target is configured", so
    /// adding a target is enough and `enabled = false` pauses all of them.
    pub enabled: Option<bool>,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline of one round; targets are probed concurrently, each bounded by its own
    /// `timeout`, itself capped by this deadline.
    pub timeout: Option<HumanDuration>,
    /// The targets, one `[[collectors.probe.targets]]` table each.
    pub targets: Vec<ProbeTargetConfig>,
}

impl ProbeConfig {
    /// Whether the collector runs: `enabled`, or by default whether any target is configured.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(!self.targets.is_empty())
    }
}

/// What a probe does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// Open a TCP connection to `address` and close it.
    #[default]
    Tcp,
    /// `GET url` over HTTP/1.1, with TLS for `https://`.
    Http,
}

/// Default per-target probe timeout.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `[[collectors.probe.targets]]`: one target.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProbeTargetConfig {
    /// The `probe` label.
    pub name: String,
    /// `tcp` or `http`.
    pub kind: ProbeKind,
    /// `host:port` for a `tcp` probe.
    pub address: Option<String>,
    /// `http://` or `https://` URL for an `http` probe.
    pub url: Option<String>,
    /// Give up after this long (default 5 s, capped by the collector's deadline).
    pub timeout: Option<HumanDuration>,
    /// HTTP status codes that count as success; empty means any 2xx.
    pub expected_status: Vec<u16>,
    /// The response body (its first MiB) must match this regex.
    pub body_regex: Option<String>,
    /// Accept any server certificate (the expiry is still reported); for self-signed test
    /// endpoints only.
    pub insecure_skip_verify: bool,
    /// PEM file of CA certificates to trust instead of the built-in web roots (absolute).
    pub ca_file: Option<PathBuf>,
    /// Extra request headers, e.g. `{ Host = "example.org" }`.
    pub headers: BTreeMap<String, String>,
}

/// `[collectors.process]`: process groups matched by name or command line.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProcessConfig {
    /// Whether the collector runs (off by default: there is nothing to watch until groups are
    /// named).
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline of one scan of /proc.
    pub timeout: Option<HumanDuration>,
    /// The groups, one `[[collectors.process.groups]]` table each.
    pub groups: Vec<ProcessGroupConfig>,
}

/// `[collectors.systemd]`: units watched over the system D-Bus.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SystemdConfig {
    /// Whether the collector runs (off by default: it needs the system bus and systemd).
    pub enabled: bool,
    /// Collection interval.
    pub interval: Option<HumanDuration>,
    /// Deadline of one collection (all D-Bus calls together).
    pub timeout: Option<HumanDuration>,
    /// Units by name (`"nginx.service"`); reported even when not loaded or not found.
    pub units: Vec<String>,
    /// Globs (`"app-*.service"`) over the names of the units systemd has loaded.
    pub unit_patterns: Vec<String>,
}

/// `[[collectors.process.groups]]`: which processes form one `group`. A process belongs to
/// every group it matches (groups are independent, so an alert on one is not affected by the
/// order of the others).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProcessGroupConfig {
    /// The `group` label.
    pub name: String,
    /// Process names: matched against the kernel's `comm` (which the kernel cuts to 15 bytes,
    /// so a longer name matches its first 15 bytes) and against the base name of `argv[0]`.
    pub comm: Vec<String>,
    /// Regex (unanchored) matched against the command line, arguments joined by spaces.
    pub cmdline: Option<String>,
}

/// Default limit on one exec plugin's standard output.
pub const DEFAULT_EXEC_MAX_OUTPUT: u64 = 1 << 20;

/// `[collectors.exec]`: plugins run as commands.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExecConfig {
    /// Whether the plugins run (off by default).
    pub enabled: bool,
    /// Interval of the plugin runs.
    pub interval: Option<HumanDuration>,
    /// Deadline of one round of runs; a plugin still running then is killed.
    pub timeout: Option<HumanDuration>,
    /// Largest standard output accepted from one run; more is an error, nothing partial is
    /// used.
    pub max_output_bytes: ByteSize,
    /// The plugins, one `[[collectors.exec.plugins]]` table each.
    pub plugins: Vec<ExecPluginConfig>,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            enabled: false,
            interval: None,
            timeout: None,
            max_output_bytes: ByteSize(DEFAULT_EXEC_MAX_OUTPUT),
            plugins: Vec::new(),
        }
    }
}

/// `[[collectors.exec.plugins]]`: one command. It runs without a shell, in its own process
/// group, with an empty environment plus the variables named in `env`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExecPluginConfig {
    /// The `plugin` label.
    pub name: String,
    /// Program (absolute path) and arguments, passed as they are: no shell, no globbing.
    pub command: Vec<String>,
    /// Kill the plugin after this long; default and upper bound: the collector's deadline.
    pub timeout: Option<HumanDuration>,
    /// Names of the daemon's environment variables passed through (e.g. `"PATH"`, `"LANG"`).
    pub env: Vec<String>,
    /// Run as this user (and its primary group); needs the daemon to run as root.
    pub user: Option<String>,
    /// Exit codes that count as success (Nagios-style plugins exit 1 or 2 with valid output).
    pub ok_exit_codes: Vec<i32>,
}

impl Default for ExecPluginConfig {
    fn default() -> Self {
        ExecPluginConfig {
            name: String::new(),
            command: Vec::new(),
            timeout: None,
            env: Vec::new(),
            user: None,
            ok_exit_codes: vec![0],
        }
    }
}
