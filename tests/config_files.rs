//! Every configuration file shipped in the repository passes `automon validate`: the default
//! config installed to /etc and every example under `config/`.

mod common;

use std::path::{Path, PathBuf};

fn validate(path: &Path) {
    let out = std::process::Command::new(common::bin())
        .args(["validate", "--config"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_default_config_validates() {
    validate(&repo().join("rootfs/etc/automon/automon.toml"));
}

#[test]
fn shipped_default_config_equals_embedded_defaults() {
    // The shipped file only documents defaults; loading it must give exactly Config::default(),
    // so installing the package changes nothing compared with running without a file.
    let text = std::fs::read_to_string(repo().join("rootfs/etc/automon/automon.toml")).unwrap();
    let cfg = automon::config::parse_str(&text, "automon.toml").unwrap();
    assert_eq!(cfg, automon::config::Config::default());
}

#[test]
fn example_configs_validate() {
    let dir = repo().join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            validate(&p);
            n += 1;
        }
    }
    assert!(n > 0, "no example configs in {}", dir.display());
}

#[test]
fn prometheus_scrape_example_passes_promtool() {
    let Some(promtool) = common::require_tool("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("automon_api_key");
    std::fs::write(&key, "k\n").unwrap();
    let text = std::fs::read_to_string(repo().join("config/prometheus-scrape.yml"))
        .unwrap()
        .replace("/etc/prometheus/automon_api_key", key.to_str().unwrap());
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, text).unwrap();
    let out = std::process::Command::new(promtool)
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shipped_rule_files_validate() {
    let dir = repo().join("config/rules");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let rules = automon::config::load::parse_rule_file(&text, &p.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!rules.is_empty(), "{} has no rules", p.display());
            // And through the CLI, as an operator would include it.
            let cfg = tempfile::tempdir().unwrap();
            let main = cfg.path().join("automon.toml");
            std::fs::write(
                &main,
                format!(
                    "[alerting]\nbuiltin_rules = false\nrule_files = [{:?}]\n",
                    p.display().to_string()
                ),
            )
            .unwrap();
            validate(&main);
            n += 1;
        }
    }
    assert!(
        n >= 2,
        "expected host and quantum rule files in {}",
        dir.display()
    );
}

#[test]
fn kubernetes_daemonset_example_is_consistent() {
    use serde::Deserialize;
    let text = std::fs::read_to_string(repo().join("packaging/kubernetes/daemonset.yaml")).unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet"
        ]
    );
    let rules = serde_yaml_ng::to_string(&docs[2]["rules"]).unwrap();
    let expected = "- apiGroups:\n  - ''\n  resources:\n  - pods\n  verbs:\n  - list\n- apiGroups:\n  - ''\n  resources:\n  - nodes\n  verbs:\n  - get\n- apiGroups:\n  - ''\n  resources:\n  - nodes/stats\n  verbs:\n  - get\n";
    assert_eq!(rules, expected, "the ClusterRole must stay minimal");

    let pod = &docs[5]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "automon");
    let container = &pod["containers"][0];
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/health", "{probe}");
    }
    for mount in container["volumeMounts"].as_sequence().unwrap() {
        if mount["mountPath"].as_str().unwrap().starts_with("/host/") {
            assert_eq!(mount["readOnly"], true, "{mount:?}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("automon.toml");
    std::fs::write(&config, docs[4]["data"]["automon.toml"].as_str().unwrap()).unwrap();
    validate(&config);
    let shipped = automon::config::parse_str(
        docs[4]["data"]["automon.toml"].as_str().unwrap(),
        "configmap",
    )
    .unwrap();
    let example = automon::config::parse_str(
        &std::fs::read_to_string(repo().join("config/kubernetes-node.toml")).unwrap(),
        "kubernetes-node.toml",
    )
    .unwrap();
    assert_eq!(
        shipped, example,
        "the ConfigMap is config/kubernetes-node.toml"
    );
}
