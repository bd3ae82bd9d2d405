//! The kubelet Summary API (`GET /stats/summary`, `k8s.io/kubelet/pkg/apis/stats/v1alpha1`):
//! the fields automon reads, and their conversion into metrics.
//!
//! Every field is optional: kubelets omit blocks they cannot fill (no PSI before 1.33 or on
//! cgroup v1, no swap without swap, no `containerFs` before 1.30) and a missing value is simply
//! not exported. Numbers are read as `f64` because their JSON type has varied between versions.
//!
//! Names follow the kubelet's own resource metrics (`/metrics/resource`:
//! `node_cpu_usage_seconds_total`, `pod_memory_working_set_bytes`,
//! `container_cpu_usage_seconds_total`, ...) and cAdvisor's (`container_memory_rss`,
//! `container_fs_usage_bytes`, `container_network_receive_bytes_total`,
//! `container_pressure_cpu_waiting_seconds_total`, ...), so dashboards built on those work;
//! what neither exports is `automon_kube_*`.

use serde::Deserialize;

use super::metrics::Families;

/// `Summary`: the node and its pods.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    /// Node-level statistics.
    pub node: Option<NodeStats>,
    /// One entry per pod the kubelet runs.
    pub pods: Vec<PodStats>,
}

/// `NodeStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStats {
    /// The node's name as the kubelet knows it.
    pub node_name: Option<String>,
    /// kubelet, runtime, pods (the cgroup of all pods), misc.
    pub system_containers: Vec<ContainerStats>,
    /// CPU of the whole node.
    pub cpu: Option<CpuStats>,
    /// Memory of the whole node.
    pub memory: Option<MemoryStats>,
    /// IO pressure of the whole node.
    pub io: Option<IoStats>,
    /// Network interfaces of the node.
    pub network: Option<NetworkStats>,
    /// The filesystem holding the kubelet's root directory.
    pub fs: Option<FsStats>,
    /// Container runtime's filesystems.
    pub runtime: Option<RuntimeStats>,
    /// Process limits.
    pub rlimit: Option<RlimitStats>,
    /// Swap of the whole node.
    pub swap: Option<SwapStats>,
}

/// `RuntimeStats`: image and container filesystems (the same device unless split).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuntimeStats {
    /// Where images are stored.
    pub image_fs: Option<FsStats>,
    /// Where writable container layers are stored (kubelet 1.30+).
    pub container_fs: Option<FsStats>,
}

/// `RlimitStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RlimitStats {
    /// Maximum number of processes (pid_max).
    pub maxpid: Option<f64>,
    /// Processes running now.
    pub curproc: Option<f64>,
}

/// `PodStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStats {
    /// Which pod.
    pub pod_ref: Option<PodReference>,
    /// The pod's containers.
    pub containers: Vec<ContainerStats>,
    /// CPU of the pod's cgroup.
    pub cpu: Option<CpuStats>,
    /// Memory of the pod's cgroup.
    pub memory: Option<MemoryStats>,
    /// IO pressure of the pod's cgroup.
    pub io: Option<IoStats>,
    /// The pod's network namespace.
    pub network: Option<NetworkStats>,
    /// Local ephemeral storage used by the pod (writable layers, logs, emptyDir).
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<FsStats>,
    /// Processes in the pod.
    #[serde(rename = "process_stats")]
    pub process_stats: Option<ProcessStats>,
    /// Swap of the pod's cgroup.
    pub swap: Option<SwapStats>,
}

/// `PodReference`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodReference {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
}

/// `ProcessStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProcessStats {
    /// Number of processes.
    pub process_count: Option<f64>,
}

/// `ContainerStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStats {
    /// Container name (for system containers: kubelet, runtime, pods, misc).
    pub name: String,
    /// RFC 3339 start time.
    pub start_time: Option<String>,
    /// CPU.
    pub cpu: Option<CpuStats>,
    /// Memory.
    pub memory: Option<MemoryStats>,
    /// IO pressure.
    pub io: Option<IoStats>,
    /// Writable layer.
    pub rootfs: Option<FsStats>,
    /// Log files.
    pub logs: Option<FsStats>,
    /// Swap.
    pub swap: Option<SwapStats>,
}

/// `CPUStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CpuStats {
    /// Recent usage in billionths of a core (a rate the kubelet computes).
    pub usage_nano_cores: Option<f64>,
    /// Cumulative CPU time in nanoseconds.
    pub usage_core_nano_seconds: Option<f64>,
    /// CPU pressure.
    pub psi: Option<PsiStats>,
}

/// `MemoryStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemoryStats {
    /// Memory available before the kubelet starts evicting (node and pods cgroup only).
    pub available_bytes: Option<f64>,
    /// Total usage including page cache.
    pub usage_bytes: Option<f64>,
    /// Usage minus inactive file cache: what the OOM killer and eviction look at.
    pub working_set_bytes: Option<f64>,
    /// Anonymous and swap cache memory.
    pub rss_bytes: Option<f64>,
    /// Cumulative page faults.
    pub page_faults: Option<f64>,
    /// Cumulative major page faults.
    pub major_page_faults: Option<f64>,
    /// Memory pressure.
    pub psi: Option<PsiStats>,
}

/// `IOStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IoStats {
    /// IO pressure.
    pub psi: Option<PsiStats>,
}

/// `PSIStats`: the cgroup's pressure stall information.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PsiStats {
    /// Time all non-idle tasks were stalled.
    pub full: Option<PsiData>,
    /// Time at least one task was stalled.
    pub some: Option<PsiData>,
}

/// `PSIData`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PsiData {
    /// Cumulative stall time in microseconds.
    pub total: Option<f64>,
}

/// `SwapStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SwapStats {
    /// Swap in use.
    pub swap_usage_bytes: Option<f64>,
    /// Swap left (node only).
    pub swap_available_bytes: Option<f64>,
}

/// `NetworkStats`: the default interface inline, and every interface in `interfaces`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkStats {
    /// The default interface's name.
    pub name: Option<String>,
    /// Every interface (including the default one).
    pub interfaces: Vec<InterfaceStats>,
    /// Default interface: bytes received.
    pub rx_bytes: Option<f64>,
    /// Default interface: receive errors.
    pub rx_errors: Option<f64>,
    /// Default interface: bytes sent.
    pub tx_bytes: Option<f64>,
    /// Default interface: transmit errors.
    pub tx_errors: Option<f64>,
}

/// `InterfaceStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InterfaceStats {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: Option<f64>,
    /// Receive errors.
    pub rx_errors: Option<f64>,
    /// Bytes sent.
    pub tx_bytes: Option<f64>,
    /// Transmit errors.
    pub tx_errors: Option<f64>,
}

/// `FsStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FsStats {
    /// Bytes available to non-root users.
    pub available_bytes: Option<f64>,
    /// Size of the filesystem.
    pub capacity_bytes: Option<f64>,
    /// Bytes used (for containers and pods: by that container or pod).
    pub used_bytes: Option<f64>,
    /// Free inodes.
    pub inodes_free: Option<f64>,
    /// Total inodes.
    pub inodes: Option<f64>,
    /// Inodes used.
    pub inodes_used: Option<f64>,
}

// Divisors, not factors: dividing two exactly representable numbers rounds once, so
// 62148052000 ns becomes exactly the f64 nearest 62.148052 (multiplying by 1e-9 would not).
const NS: f64 = 1e9;
const US: f64 = 1e6;

/// Adds the Summary's metrics to `out`. `node` labels node-level series; pods carry
/// `namespace` and `pod`, containers also `container`. Pod UIDs are never labels.
pub fn summary_families(summary: &Summary, node: &str, out: &mut Families) {
    if let Some(n) = &summary.node {
        node_families(n, node, out);
    }
    for pod in &summary.pods {
        let Some(pod_ref) = &pod.pod_ref else {
            // Without a name there is nothing to label the series with.
            continue;
        };
        if out.first_sighting("kubelet", &pod_ref.namespace, &pod_ref.name) {
            pod_families(pod, &pod_ref.namespace, &pod_ref.name, out);
        }
    }
}

fn node_families(n: &NodeStats, node: &str, out: &mut Families) {
    let l = [("node", node)];
    if let Some(cpu) = &n.cpu {
        out.counter(
            "node_cpu_usage_seconds_total",
            "Cumulative CPU time of the node in core-seconds, from the kubelet Summary API",
            &l,
            cpu.usage_core_nano_seconds.map(|v| v / NS),
        );
        out.gauge(
            "automon_kube_node_cpu_usage_cores",
            "CPU in use on the node in cores, averaged by the kubelet over its sampling window",
            &l,
            cpu.usage_nano_cores.map(|v| v / NS),
        );
    }
    if let Some(m) = &n.memory {
        out.gauge(
            "node_memory_working_set_bytes",
            "Node memory working set in bytes (usage minus inactive file cache)",
            &l,
            m.working_set_bytes,
        );
        out.gauge(
            "automon_kube_node_memory_available_bytes",
            "Node memory available before kubelet eviction thresholds, in bytes",
            &l,
            m.available_bytes,
        );
        out.gauge(
            "automon_kube_node_memory_usage_bytes",
            "Node memory usage in bytes, including page cache",
            &l,
            m.usage_bytes,
        );
        out.gauge(
            "automon_kube_node_memory_rss_bytes",
            "Node anonymous and swap cache memory in bytes",
            &l,
            m.rss_bytes,
        );
    }
    if let Some(s) = &n.swap {
        out.gauge(
            "node_swap_usage_bytes",
            "Node swap in use in bytes",
            &l,
            s.swap_usage_bytes,
        );
        out.gauge(
            "automon_kube_node_swap_available_bytes",
            "Node swap available in bytes",
            &l,
            s.swap_available_bytes,
        );
    }
    psi_families(
        "automon_kube_node_pressure",
        "the node",
        n.cpu.as_ref().and_then(|c| c.psi.as_ref()),
        n.memory.as_ref().and_then(|m| m.psi.as_ref()),
        n.io.as_ref().and_then(|i| i.psi.as_ref()),
        &l,
        out,
    );
    if let Some(net) = &n.network {
        // The node's interfaces are few and stable (the host's own), so all are reported.
        for iface in interfaces(net) {
            network_families(
                "automon_kube_node_network",
                "the node",
                &iface,
                &[("node", node), ("interface", &iface.name)],
                out,
            );
        }
    }
    let runtime = n.runtime.as_ref();
    for (fs, stats) in [
        ("root", n.fs.as_ref()),
        ("image", runtime.and_then(|r| r.image_fs.as_ref())),
        ("container", runtime.and_then(|r| r.container_fs.as_ref())),
    ] {
        let Some(stats) = stats else { continue };
        let l = [("node", node), ("fs", fs)];
        out.gauge(
            "automon_kube_node_fs_capacity_bytes",
            "Size of the kubelet's filesystems in bytes (fs: root = kubelet root dir, image, container)",
            &l,
            stats.capacity_bytes,
        );
        out.gauge(
            "automon_kube_node_fs_available_bytes",
            "Bytes available to non-root users on the kubelet's filesystems",
            &l,
            stats.available_bytes,
        );
        out.gauge(
            "automon_kube_node_fs_used_bytes",
            "Bytes used on the kubelet's filesystems",
            &l,
            stats.used_bytes,
        );
        out.gauge(
            "automon_kube_node_fs_inodes",
            "Inodes on the kubelet's filesystems",
            &l,
            stats.inodes,
        );
        out.gauge(
            "automon_kube_node_fs_inodes_free",
            "Free inodes on the kubelet's filesystems",
            &l,
            stats.inodes_free,
        );
    }
    if let Some(r) = &n.rlimit {
        out.gauge(
            "automon_kube_node_processes",
            "Processes running on the node",
            &l,
            r.curproc,
        );
        out.gauge(
            "automon_kube_node_processes_max",
            "Maximum number of processes on the node (pid_max)",
            &l,
            r.maxpid,
        );
    }
    for sc in &n.system_containers {
        let l = [("node", node), ("system_container", sc.name.as_str())];
        out.counter(
            "automon_kube_system_container_cpu_usage_seconds_total",
            "Cumulative CPU time of the kubelet's system containers (kubelet, runtime, pods, misc) in core-seconds",
            &l,
            sc.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds).map(|v| v / NS),
        );
        out.gauge(
            "automon_kube_system_container_memory_working_set_bytes",
            "Memory working set of the kubelet's system containers in bytes",
            &l,
            sc.memory.as_ref().and_then(|m| m.working_set_bytes),
        );
    }
}

fn pod_families(pod: &PodStats, namespace: &str, name: &str, out: &mut Families) {
    let l = [("namespace", namespace), ("pod", name)];
    if let Some(cpu) = &pod.cpu {
        out.counter(
            "pod_cpu_usage_seconds_total",
            "Cumulative CPU time of the pod in core-seconds",
            &l,
            cpu.usage_core_nano_seconds.map(|v| v / NS),
        );
    }
    if let Some(m) = &pod.memory {
        out.gauge(
            "pod_memory_working_set_bytes",
            "Pod memory working set in bytes",
            &l,
            m.working_set_bytes,
        );
        out.gauge(
            "automon_kube_pod_memory_rss_bytes",
            "Pod anonymous and swap cache memory in bytes",
            &l,
            m.rss_bytes,
        );
        out.gauge(
            "automon_kube_pod_memory_usage_bytes",
            "Pod memory usage in bytes, including page cache",
            &l,
            m.usage_bytes,
        );
    }
    if let Some(s) = &pod.swap {
        out.gauge(
            "pod_swap_usage_bytes",
            "Pod swap in use in bytes",
            &l,
            s.swap_usage_bytes,
        );
    }
    if let Some(e) = &pod.ephemeral_storage {
        out.gauge(
            "automon_kube_pod_ephemeral_storage_used_bytes",
            "Local ephemeral storage used by the pod in bytes (writable layers, logs, emptyDir)",
            &l,
            e.used_bytes,
        );
    }
    if let Some(p) = &pod.process_stats {
        out.gauge(
            "automon_kube_pod_processes",
            "Processes running in the pod",
            &l,
            p.process_count,
        );
    }
    psi_families(
        "automon_kube_pod_pressure",
        "the pod",
        pod.cpu.as_ref().and_then(|c| c.psi.as_ref()),
        pod.memory.as_ref().and_then(|m| m.psi.as_ref()),
        pod.io.as_ref().and_then(|i| i.psi.as_ref()),
        &l,
        out,
    );
    if let Some(net) = &pod.network {
        // Only the pod's default interface: the kernel's tunnel devices (tunl0, gre0, sit0...)
        // appear in every pod's namespace and would multiply the series count by ten.
        if let Some(iface) = default_interface(net) {
            network_families(
                "container_network",
                "the pod",
                &iface,
                &[
                    ("namespace", namespace),
                    ("pod", name),
                    ("interface", &iface.name),
                ],
                out,
            );
        }
    }
    for c in &pod.containers {
        container_families(c, namespace, name, out);
    }
}

fn container_families(c: &ContainerStats, namespace: &str, pod: &str, out: &mut Families) {
    let l = [
        ("namespace", namespace),
        ("pod", pod),
        ("container", c.name.as_str()),
    ];
    if let Some(cpu) = &c.cpu {
        out.counter(
            "container_cpu_usage_seconds_total",
            "Cumulative CPU time of the container in core-seconds",
            &l,
            cpu.usage_core_nano_seconds.map(|v| v / NS),
        );
    }
    if let Some(m) = &c.memory {
        out.gauge(
            "container_memory_working_set_bytes",
            "Container memory working set in bytes",
            &l,
            m.working_set_bytes,
        );
        out.gauge(
            "container_memory_rss",
            "Container anonymous and swap cache memory in bytes",
            &l,
            m.rss_bytes,
        );
        out.gauge(
            "container_memory_usage_bytes",
            "Container memory usage in bytes, including page cache",
            &l,
            m.usage_bytes,
        );
        out.counter(
            "container_memory_failures_total",
            "Cumulative page faults of the container (failure_type: pgfault, pgmajfault)",
            &[
                ("namespace", namespace),
                ("pod", pod),
                ("container", c.name.as_str()),
                ("failure_type", "pgfault"),
                ("scope", "container"),
            ],
            m.page_faults,
        );
        out.counter(
            "container_memory_failures_total",
            "Cumulative page faults of the container (failure_type: pgfault, pgmajfault)",
            &[
                ("namespace", namespace),
                ("pod", pod),
                ("container", c.name.as_str()),
                ("failure_type", "pgmajfault"),
                ("scope", "container"),
            ],
            m.major_page_faults,
        );
    }
    if let Some(s) = &c.swap {
        out.gauge(
            "container_swap_usage_bytes",
            "Container swap in use in bytes",
            &l,
            s.swap_usage_bytes,
        );
    }
    if let Some(fs) = &c.rootfs {
        out.gauge(
            "container_fs_usage_bytes",
            "Bytes used by the container's writable layer",
            &l,
            fs.used_bytes,
        );
    }
    if let Some(fs) = &c.logs {
        out.gauge(
            "automon_kube_container_logs_used_bytes",
            "Bytes used by the container's log files",
            &l,
            fs.used_bytes,
        );
    }
    out.gauge(
        "container_start_time_seconds",
        "Start time of the container since the Unix epoch in seconds",
        &l,
        c.start_time.as_deref().and_then(rfc3339_seconds),
    );
    psi_families(
        "container_pressure",
        "the container",
        c.cpu.as_ref().and_then(|c| c.psi.as_ref()),
        c.memory.as_ref().and_then(|m| m.psi.as_ref()),
        c.io.as_ref().and_then(|i| i.psi.as_ref()),
        &l,
        out,
    );
}

/// Pressure counters in cAdvisor's naming: `some` is "waiting", `full` is "stalled".
fn psi_families(
    prefix: &str,
    whom: &str,
    cpu: Option<&PsiStats>,
    memory: Option<&PsiStats>,
    io: Option<&PsiStats>,
    labels: &[(&str, &str)],
    out: &mut Families,
) {
    for (resource, psi) in [("cpu", cpu), ("memory", memory), ("io", io)] {
        let Some(psi) = psi else { continue };
        out.counter(
            &format!("{prefix}_{resource}_waiting_seconds_total"),
            &format!("Total time in seconds that tasks of {whom} waited for {resource} (PSI some)"),
            labels,
            psi.some.as_ref().and_then(|d| d.total).map(|v| v / US),
        );
        out.counter(
            &format!("{prefix}_{resource}_stalled_seconds_total"),
            &format!("Total time in seconds that no task of {whom} made progress for lack of {resource} (PSI full)"),
            labels,
            psi.full.as_ref().and_then(|d| d.total).map(|v| v / US),
        );
    }
}

fn network_families(
    prefix: &str,
    whom: &str,
    iface: &InterfaceStats,
    labels: &[(&str, &str)],
    out: &mut Families,
) {
    for (what, help, value) in [
        ("receive_bytes_total", "Bytes received by", iface.rx_bytes),
        ("receive_errors_total", "Receive errors of", iface.rx_errors),
        ("transmit_bytes_total", "Bytes sent by", iface.tx_bytes),
        (
            "transmit_errors_total",
            "Transmit errors of",
            iface.tx_errors,
        ),
    ] {
        out.counter(
            &format!("{prefix}_{what}"),
            &format!("{help} {whom} per network interface"),
            labels,
            value,
        );
    }
}

/// Every interface; old kubelets fill only the inline default interface.
fn interfaces(net: &NetworkStats) -> Vec<InterfaceStats> {
    if net.interfaces.is_empty() {
        default_interface(net).into_iter().collect()
    } else {
        net.interfaces
            .iter()
            .map(|i| InterfaceStats {
                name: i.name.clone(),
                rx_bytes: i.rx_bytes,
                rx_errors: i.rx_errors,
                tx_bytes: i.tx_bytes,
                tx_errors: i.tx_errors,
            })
            .collect()
    }
}

fn default_interface(net: &NetworkStats) -> Option<InterfaceStats> {
    Some(InterfaceStats {
        name: net.name.clone()?,
        rx_bytes: net.rx_bytes,
        rx_errors: net.rx_errors,
        tx_bytes: net.tx_bytes,
        tx_errors: net.tx_errors,
    })
}

/// `"2026-06-26T10:12:13Z"` (Kubernetes writes times in UTC) as Unix seconds; `None` if unparsable, so a
/// strange timestamp costs one series, not the collection.
pub fn rfc3339_seconds(s: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_recreated_under_the_same_name_is_reported_once() {
        let s: Summary = serde_json::from_str(
            r#"{"pods":[
              {"podRef":{"name":"db-0","namespace":"a","uid":"old"},"memory":{"workingSetBytes":1}},
              {"podRef":{"name":"db-0","namespace":"a","uid":"new"},"memory":{"workingSetBytes":2}}]}"#,
        )
        .unwrap();
        let mut out = Families::new();
        summary_families(&s, "n", &mut out);
        assert_eq!(out.duplicates(), 1);
        assert!(out.note().unwrap().contains("reported twice"));
        let families = out.into_vec();
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].samples.len(), 1);
        assert_eq!(families[0].samples[0].value, 1.0);
    }

    #[test]
    fn old_kubelet_network_without_interfaces_list() {
        let s: Summary = serde_json::from_str(
            r#"{"node":{"network":{"name":"eth0","rxBytes":10,"txBytes":20}}}"#,
        )
        .unwrap();
        let mut out = Families::new();
        summary_families(&s, "n", &mut out);
        let families = out.into_vec();
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "automon_kube_node_network_receive_bytes_total",
                "automon_kube_node_network_transmit_bytes_total"
            ]
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }
}
