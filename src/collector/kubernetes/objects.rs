//! API-server objects: the pods on this node and the node itself, reduced to the fields
//! automon reads, and their conversion into kube-state-metrics' metric names and labels
//! (`kube_pod_status_phase`, `kube_pod_container_status_restarts_total`,
//! `kube_node_status_condition`, `kube_pod_container_resource_requests`, ...), so its
//! dashboards and alert rules apply. Differences from kube-state-metrics: no `uid` label (it
//! changes with every pod and would make the series count grow without bound) and only the
//! pods of this node.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::metrics::Families;
use super::quantity::parse_quantity;

/// `v1.PodList`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodList {
    /// The pods.
    pub items: Vec<Pod>,
}

/// `v1.Pod`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Containers and their resources.
    pub spec: PodSpec,
    /// Phase, conditions, container states.
    pub status: PodStatus,
}

/// `metav1.ObjectMeta`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace (empty for nodes).
    pub namespace: String,
}

/// `v1.PodSpec`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    /// The node the pod is bound to.
    pub node_name: Option<String>,
    /// The pod's (non-init) containers.
    pub containers: Vec<Container>,
}

/// `v1.Container`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Requests and limits.
    pub resources: Resources,
}

/// `v1.ResourceRequirements`: quantities by resource name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Requested amounts.
    pub requests: BTreeMap<String, String>,
    /// Limits.
    pub limits: BTreeMap<String, String>,
}

/// `v1.PodStatus`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    /// Pending, Running, Succeeded, Failed or Unknown.
    pub phase: Option<String>,
    /// Ready, ContainersReady, PodScheduled, ...
    pub conditions: Vec<Condition>,
    /// One per container that has a status.
    pub container_statuses: Vec<ContainerStatus>,
}

/// A pod or node condition.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    /// Condition type (Ready, MemoryPressure, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// "True", "False" or "Unknown".
    pub status: String,
}

/// `v1.ContainerStatus`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// Whether the readiness probe passes.
    pub ready: Option<bool>,
    /// Restarts so far.
    pub restart_count: Option<f64>,
    /// The current state.
    pub state: Option<ContainerState>,
    /// The previous run's state (how it ended).
    pub last_state: Option<ContainerState>,
}

/// `v1.ContainerState`: one of the three is set.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerState {
    /// Not running yet, or between restarts (CrashLoopBackOff, ImagePullBackOff, ...).
    pub waiting: Option<StateDetail>,
    /// Running.
    pub running: Option<serde_json::Value>,
    /// Exited (Completed, Error, OOMKilled, ...).
    pub terminated: Option<StateDetail>,
}

/// Reason and exit code of a waiting or terminated state.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StateDetail {
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// Exit code (terminated only).
    pub exit_code: Option<f64>,
}

/// `v1.Node`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    /// The node's name.
    pub metadata: ObjectMeta,
    /// Schedulability.
    pub spec: NodeSpec,
    /// Conditions, capacity, allocatable.
    pub status: NodeStatus,
}

/// `v1.NodeSpec`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeSpec {
    /// Cordoned.
    pub unschedulable: Option<bool>,
}

/// `v1.NodeStatus`, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    /// Resources of the node.
    pub capacity: BTreeMap<String, String>,
    /// Resources available to pods.
    pub allocatable: BTreeMap<String, String>,
    /// Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable, ...
    pub conditions: Vec<Condition>,
}

const PHASES: [&str; 5] = ["Pending", "Succeeded", "Failed", "Unknown", "Running"];

fn bool_value(b: bool) -> Option<f64> {
    Some(if b { 1.0 } else { 0.0 })
}

/// kube-state-metrics' `resource` and `unit` labels: `ephemeral-storage` becomes
/// `ephemeral_storage` (label values are sanitised like label names), CPU is counted in
/// cores, memory-like resources in bytes, everything else in integers.
fn resource_labels(resource: &str) -> (String, &'static str) {
    let name: String = resource
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let unit = match resource {
        "cpu" => "core",
        "memory" | "ephemeral-storage" | "storage" => "byte",
        r if r.starts_with("hugepages-") => "byte",
        _ => "integer",
    };
    (name, unit)
}

/// Adds a condition as three series, one per status, the one that holds set to 1 (the shape
/// of `kube_node_status_condition` and `kube_pod_status_ready`).
fn condition_families(
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    status: &str,
    out: &mut Families,
) {
    for s in ["true", "false", "unknown"] {
        let mut l = labels.to_vec();
        l.push(("status", s));
        out.gauge(name, help, &l, bool_value(status.eq_ignore_ascii_case(s)));
    }
}

/// Adds the metrics of the pods on `node`. Pods bound elsewhere are skipped (the field
/// selector already excludes them; this guards a server that ignores it).
pub fn pod_families(pods: &PodList, node: &str, out: &mut Families) {
    for pod in &pods.items {
        if pod.spec.node_name.as_deref().is_some_and(|n| n != node) {
            continue;
        }
        let (ns, name) = (pod.metadata.namespace.as_str(), pod.metadata.name.as_str());
        if !out.first_sighting("api", ns, name) {
            continue;
        }
        let l = [("namespace", ns), ("pod", name)];
        if let Some(phase) = &pod.status.phase {
            for p in PHASES {
                let mut lp = l.to_vec();
                lp.push(("phase", p));
                out.gauge(
                    "kube_pod_status_phase",
                    "The pods current phase",
                    &lp,
                    bool_value(phase == p),
                );
            }
        }
        if let Some(ready) = pod.status.conditions.iter().find(|c| c.kind == "Ready") {
            for s in ["true", "false", "unknown"] {
                let mut lc = l.to_vec();
                lc.push(("condition", s));
                out.gauge(
                    "kube_pod_status_ready",
                    "Describes whether the pod is ready to serve requests",
                    &lc,
                    bool_value(ready.status.eq_ignore_ascii_case(s)),
                );
            }
        }
        for cs in &pod.status.container_statuses {
            container_status_families(cs, ns, name, out);
        }
        for c in &pod.spec.containers {
            for (metric, help, quantities) in [
                (
                    "kube_pod_container_resource_requests",
                    "The number of requested request resource by a container",
                    &c.resources.requests,
                ),
                (
                    "kube_pod_container_resource_limits",
                    "The number of requested limit resource by a container",
                    &c.resources.limits,
                ),
            ] {
                for (resource, q) in quantities {
                    let (res, unit) = resource_labels(resource);
                    let value = match parse_quantity(q) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            out.problem(format!("pod {ns}/{name} container {}: {e}", c.name));
                            None
                        }
                    };
                    out.gauge(
                        metric,
                        help,
                        &[
                            ("namespace", ns),
                            ("pod", name),
                            ("container", c.name.as_str()),
                            ("node", node),
                            ("resource", res.as_str()),
                            ("unit", unit),
                        ],
                        value,
                    );
                }
            }
        }
    }
}

fn container_status_families(cs: &ContainerStatus, ns: &str, pod: &str, out: &mut Families) {
    let l = [
        ("namespace", ns),
        ("pod", pod),
        ("container", cs.name.as_str()),
    ];
    out.counter(
        "kube_pod_container_status_restarts_total",
        "The number of container restarts per container",
        &l,
        cs.restart_count,
    );
    out.gauge(
        "kube_pod_container_status_ready",
        "Describes whether the containers readiness check succeeded",
        &l,
        cs.ready.and_then(bool_value),
    );
    if let Some(state) = &cs.state {
        out.gauge(
            "kube_pod_container_status_running",
            "Describes whether the container is currently in running state",
            &l,
            bool_value(state.running.is_some()),
        );
        out.gauge(
            "kube_pod_container_status_waiting",
            "Describes whether the container is currently in waiting state",
            &l,
            bool_value(state.waiting.is_some()),
        );
        out.gauge(
            "kube_pod_container_status_terminated",
            "Describes whether the container is currently in terminated state",
            &l,
            bool_value(state.terminated.is_some()),
        );
        if let Some(reason) = state.waiting.as_ref().and_then(|w| w.reason.as_deref()) {
            let mut lr = l.to_vec();
            lr.push(("reason", reason));
            out.gauge(
                "kube_pod_container_status_waiting_reason",
                "Describes the reason the container is currently in waiting state",
                &lr,
                Some(1.0),
            );
        }
        if let Some(reason) = state.terminated.as_ref().and_then(|t| t.reason.as_deref()) {
            let mut lr = l.to_vec();
            lr.push(("reason", reason));
            out.gauge(
                "kube_pod_container_status_terminated_reason",
                "Describes the reason the container is currently in terminated state",
                &lr,
                Some(1.0),
            );
        }
    }
    if let Some(last) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
        if let Some(reason) = last.reason.as_deref() {
            let mut lr = l.to_vec();
            lr.push(("reason", reason));
            out.gauge(
                "kube_pod_container_status_last_terminated_reason",
                "Describes the last reason the container was in terminated state",
                &lr,
                Some(1.0),
            );
        }
        out.gauge(
            "kube_pod_container_status_last_terminated_exitcode",
            "Describes the exit code for the last container in terminated state",
            &l,
            last.exit_code,
        );
    }
}

/// Adds the node object's conditions, capacity, allocatable and schedulability.
pub fn node_families(n: &Node, out: &mut Families) {
    let node = n.metadata.name.as_str();
    for c in &n.status.conditions {
        condition_families(
            "kube_node_status_condition",
            "The condition of a cluster node",
            &[("node", node), ("condition", c.kind.as_str())],
            &c.status,
            out,
        );
    }
    for (metric, help, quantities) in [
        (
            "kube_node_status_capacity",
            "The capacity for different resources of a node",
            &n.status.capacity,
        ),
        (
            "kube_node_status_allocatable",
            "The allocatable for different resources of a node that are available for scheduling",
            &n.status.allocatable,
        ),
    ] {
        for (resource, q) in quantities {
            let (res, unit) = resource_labels(resource);
            let value = match parse_quantity(q) {
                Ok(v) => Some(v),
                Err(e) => {
                    out.problem(format!("node {node} {resource}: {e}"));
                    None
                }
            };
            out.gauge(
                metric,
                help,
                &[("node", node), ("resource", res.as_str()), ("unit", unit)],
                value,
            );
        }
    }
    out.gauge(
        "kube_node_spec_unschedulable",
        "Whether a node can schedule new pods",
        &[("node", node)],
        bool_value(n.spec.unschedulable.unwrap_or(false)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::render_family;

    fn render(out: Families) -> String {
        let mut s = String::new();
        for f in out.into_vec() {
            render_family(&mut s, &f);
        }
        s
    }

    /// A container in CrashLoopBackOff whose previous run was OOM-killed, in the shape the API
    /// server returns (trimmed to the fields read), with an unparsable quantity and a pod of
    /// another node.
    #[test]
    fn crash_loop_oom_killed_and_bad_quantities() {
        let pods: PodList = serde_json::from_str(
            r#"{"kind":"PodList","apiVersion":"v1","items":[
              {"metadata":{"name":"web-1","namespace":"prod","uid":"0b5c"},
               "spec":{"nodeName":"n1","containers":[{"name":"app","resources":{
                  "requests":{"cpu":"250m","memory":"64Mi","nvidia.com/gpu":"1"},
                  "limits":{"memory":"lots"}}}]},
               "status":{"phase":"Running",
                 "conditions":[{"type":"Ready","status":"False"}],
                 "containerStatuses":[{"name":"app","ready":false,"restartCount":7,
                   "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s"}},
                   "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled"}}}]}},
              {"metadata":{"name":"elsewhere","namespace":"prod"},
               "spec":{"nodeName":"n2"},"status":{"phase":"Running"}}
            ]}"#,
        )
        .unwrap();
        let mut out = Families::new();
        pod_families(&pods, "n1", &mut out);
        let note = out.note().unwrap();
        assert!(
            note.contains("prod/web-1") && note.contains("\"lots\""),
            "{note}"
        );
        let text = render(out);
        for line in [
            r#"kube_pod_status_phase{namespace="prod",phase="Running",pod="web-1"} 1"#,
            r#"kube_pod_status_phase{namespace="prod",phase="Pending",pod="web-1"} 0"#,
            r#"kube_pod_status_ready{condition="false",namespace="prod",pod="web-1"} 1"#,
            r#"kube_pod_container_status_restarts_total{container="app",namespace="prod",pod="web-1"} 7"#,
            r#"kube_pod_container_status_ready{container="app",namespace="prod",pod="web-1"} 0"#,
            r#"kube_pod_container_status_waiting{container="app",namespace="prod",pod="web-1"} 1"#,
            r#"kube_pod_container_status_waiting_reason{container="app",namespace="prod",pod="web-1",reason="CrashLoopBackOff"} 1"#,
            r#"kube_pod_container_status_last_terminated_reason{container="app",namespace="prod",pod="web-1",reason="OOMKilled"} 1"#,
            r#"kube_pod_container_status_last_terminated_exitcode{container="app",namespace="prod",pod="web-1"} 137"#,
            r#"kube_pod_container_resource_requests{container="app",namespace="prod",node="n1",pod="web-1",resource="cpu",unit="core"} 0.25"#,
            r#"kube_pod_container_resource_requests{container="app",namespace="prod",node="n1",pod="web-1",resource="memory",unit="byte"} 67108864"#,
            r#"kube_pod_container_resource_requests{container="app",namespace="prod",node="n1",pod="web-1",resource="nvidia_com_gpu",unit="integer"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(
            !text.contains("kube_pod_container_resource_limits"),
            "{text}"
        );
        assert!(!text.contains("elsewhere"), "{text}");
        assert!(!text.contains("0b5c"), "no uid labels: {text}");
    }

    #[test]
    fn node_conditions_and_cordon() {
        let node: Node = serde_json::from_str(
            r#"{"metadata":{"name":"n1"},"spec":{"unschedulable":true},
                "status":{"conditions":[{"type":"DiskPressure","status":"Unknown"}],
                          "capacity":{"hugepages-2Mi":"0","pods":"110"}}}"#,
        )
        .unwrap();
        let mut out = Families::new();
        node_families(&node, &mut out);
        let text = render(out);
        for line in [
            r#"kube_node_status_condition{condition="DiskPressure",node="n1",status="unknown"} 1"#,
            r#"kube_node_status_condition{condition="DiskPressure",node="n1",status="true"} 0"#,
            r#"kube_node_status_capacity{node="n1",resource="hugepages_2Mi",unit="byte"} 0"#,
            r#"kube_node_status_capacity{node="n1",resource="pods",unit="integer"} 110"#,
            r#"kube_node_spec_unschedulable{node="n1"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn empty_objects_give_no_series_and_no_error() {
        let mut out = Families::new();
        pod_families(&serde_json::from_str("{}").unwrap(), "n1", &mut out);
        pod_families(
            &serde_json::from_str(r#"{"items":[{}]}"#).unwrap(),
            "n1",
            &mut out,
        );
        assert!(out.note().is_none());
        assert!(out.into_vec().is_empty());
    }
}
