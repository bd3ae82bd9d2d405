#![allow(clippy::cloned_ref_to_slice_refs)] // a literal slice of clones reads best here

use std::time::Duration;

use super::*;
use crate::alert::matcher::MatcherJson;
use crate::alert::silence::Silence;
use crate::config::alerting::RouteConfig;
use crate::config::HumanDuration;

const S: i64 = 1000;

fn entry(name: &str, device: &str, severity: &str, status: AlertStatus) -> Entry {
    let labels: BTreeMap<String, String> = [
        ("alertname".to_string(), name.to_string()),
        ("device".to_string(), device.to_string()),
        ("severity".to_string(), severity.to_string()),
    ]
    .into();
    let fp = crate::alert::fingerprint(&labels);
    Entry {
        fp,
        info: AlertInfo {
            status,
            labels,
            annotations: BTreeMap::new(),
            starts_at_ms: 0,
            ends_at_ms: (status == AlertStatus::Resolved).then_some(1),
            value: 1.0,
            fingerprint: crate::alert::fingerprint_hex(fp),
            generator_url: String::new(),
        },
    }
}

fn grouper(send_resolved: bool, resend: Option<i64>) -> Grouper {
    let cfg = RouteConfig {
        receiver: Some("ops".into()),
        group_wait: Some(HumanDuration(Duration::from_secs(30))),
        group_interval: Some(HumanDuration(Duration::from_secs(300))),
        repeat_interval: Some(HumanDuration(Duration::from_secs(3600))),
        ..RouteConfig::root_default()
    };
    let root = Route::compile(&cfg, &["ops"]).unwrap();
    let integrations = [(
        "ops".to_string(),
        vec![IntegrationInfo {
            id: "ops/webhook/0".into(),
            send_resolved,
            resend_ms: resend,
        }],
    )]
    .into();
    let inhibit = crate::config::alerting::AlertingConfig::default()
        .inhibit_rules
        .iter()
        .map(|r| InhibitRule::compile(r).unwrap())
        .collect();
    Grouper::new(
        root,
        integrations,
        inhibit,
        BTreeMap::new(),
        "web1".into(),
        "http://web1:9787".into(),
    )
}

/// One evaluation: feed, flush, commit. Returns the notifications (status and alert count).
fn step(
    g: &mut Grouper,
    alerts: &[Entry],
    now: i64,
    silences: &ActiveSilences,
) -> Vec<(AlertStatus, usize)> {
    g.update(alerts, now);
    let out = g.flush_due(now, silences);
    g.commit(&out, now);
    out.iter()
        .filter(|e| !e.payload.is_empty())
        .map(|e| {
            let n: Notification = serde_json::from_str(&e.payload).unwrap();
            (n.status, n.alerts.len())
        })
        .collect()
}

fn none() -> ActiveSilences {
    ActiveSilences::default()
}

#[test]
fn group_wait_then_group_interval_then_repeat() {
    let mut g = grouper(true, None);
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    assert!(
        step(&mut g, &[a.clone()], 0, &none()).is_empty(),
        "group_wait"
    );
    assert_eq!(
        step(&mut g, &[a.clone()], 30 * S, &none()),
        [(AlertStatus::Firing, 1)]
    );
    // Unchanged: nothing at the next group intervals until repeat_interval.
    for t in [45, 330, 630, 930, 3330] {
        assert!(
            step(&mut g, &[a.clone()], t * S, &none()).is_empty(),
            "t={t}"
        );
    }
    assert_eq!(
        step(&mut g, &[a.clone()], 3630 * S, &none()),
        [(AlertStatus::Firing, 1)]
    );
}

#[test]
fn a_new_alert_in_a_notified_group_waits_for_the_group_interval() {
    let mut g = grouper(true, None);
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    let b = entry("DiskFull", "sdb", "warning", AlertStatus::Firing);
    step(&mut g, &[a.clone()], 0, &none());
    assert_eq!(step(&mut g, &[a.clone()], 30 * S, &none()).len(), 1);
    assert!(step(&mut g, &[a.clone(), b.clone()], 60 * S, &none()).is_empty());
    assert_eq!(
        step(&mut g, &[a.clone(), b.clone()], 330 * S, &none()),
        [(AlertStatus::Firing, 2)]
    );
}

#[test]
fn resolution_is_sent_once_and_only_where_wanted() {
    for send_resolved in [true, false] {
        let mut g = grouper(send_resolved, None);
        let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
        let r = entry("DiskFull", "sda", "warning", AlertStatus::Resolved);
        step(&mut g, &[a.clone()], 0, &none());
        step(&mut g, &[a.clone()], 30 * S, &none());
        let got = step(&mut g, &[r.clone()], 330 * S, &none());
        if send_resolved {
            assert_eq!(got, [(AlertStatus::Resolved, 1)]);
        } else {
            assert!(got.is_empty());
        }
        // Later evaluations still report the resolved alert (kept 15 minutes): no repeat.
        assert!(step(&mut g, &[r.clone()], 630 * S, &none()).is_empty());
        assert_eq!(g.group_count(), 0);
    }
}

#[test]
fn flapping_does_not_storm() {
    let mut g = grouper(true, None);
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    let r = entry("DiskFull", "sda", "warning", AlertStatus::Resolved);
    let mut sent = 0;
    // Flaps every 15 s evaluation for an hour.
    for i in 0..240 {
        let alert = if i % 2 == 0 { a.clone() } else { r.clone() };
        sent += step(&mut g, &[alert], i * 15 * S, &none()).len();
    }
    // At most one per group_interval (5 min): 12 in an hour, plus the first.
    assert!(sent <= 13, "{sent} notifications");
    assert!(sent >= 1);
}

#[test]
fn silences_mute_and_expire() {
    let mut g = grouper(true, None);
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    let silence = Silence {
        id: "s1".into(),
        matchers: vec![MatcherJson {
            name: "device".into(),
            value: "sda".into(),
            is_regex: false,
            is_equal: true,
        }],
        starts_at_ms: 0,
        ends_at_ms: 600 * S,
        created_by: "alice".into(),
        comment: "disk swap".into(),
        updated_at_ms: 0,
    };
    let active = ActiveSilences::new(&[silence], 0);
    assert!(step(&mut g, &[a.clone()], 0, &active).is_empty());
    assert!(
        step(&mut g, &[a.clone()], 30 * S, &active).is_empty(),
        "silenced"
    );
    assert!(
        step(&mut g, &[a.clone()], 330 * S, &active).is_empty(),
        "silenced"
    );
    assert_eq!(
        step(&mut g, &[a.clone()], 630 * S, &active),
        [(AlertStatus::Firing, 1)],
        "expired"
    );
}

#[test]
fn critical_inhibits_warning_with_equal_labels() {
    let mut g = grouper(true, None);
    let warn = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    let crit = entry("DiskFull", "sda", "critical", AlertStatus::Firing);
    let other = entry("DiskFull", "sdb", "warning", AlertStatus::Firing);
    step(
        &mut g,
        &[warn.clone(), crit.clone(), other.clone()],
        0,
        &none(),
    );
    let out = g.flush_due(30 * S, &none());
    let n: Notification = serde_json::from_str(&out[0].payload).unwrap();
    let got: Vec<(String, String)> = n
        .alerts
        .iter()
        .map(|a| (a.labels["device"].clone(), a.labels["severity"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("sda".to_string(), "critical".to_string()),
            ("sdb".to_string(), "warning".to_string())
        ]
    );
}

#[test]
fn alertmanager_integrations_are_refreshed_at_their_resend_interval() {
    let mut g = grouper(true, Some(60 * S));
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    step(&mut g, &[a.clone()], 0, &none());
    assert_eq!(step(&mut g, &[a.clone()], 30 * S, &none()).len(), 1);
    assert!(step(&mut g, &[a.clone()], 75 * S, &none()).is_empty());
    assert_eq!(
        step(&mut g, &[a.clone()], 90 * S, &none()).len(),
        1,
        "resent after 60 s"
    );
}

#[test]
fn a_restart_with_the_log_does_not_renotify() {
    let mut g = grouper(true, None);
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    step(&mut g, &[a.clone()], 0, &none());
    assert_eq!(step(&mut g, &[a.clone()], 30 * S, &none()).len(), 1);
    let log = g.nflog.clone();
    // A new grouper with the persisted log: the group is new (group_wait) but the firing set
    // was already notified.
    let mut g2 = grouper(true, None);
    g2.nflog = log;
    assert!(step(&mut g2, &[a.clone()], 100 * S, &none()).is_empty());
    assert!(step(&mut g2, &[a.clone()], 130 * S, &none()).is_empty());
}

#[test]
fn dedup_key_is_stable_and_content_sensitive() {
    let g = grouper(true, None);
    let a = entry("DiskFull", "sda", "warning", AlertStatus::Firing);
    let r = entry("DiskFull", "sda", "warning", AlertStatus::Resolved);
    let k1 = g
        .notification("ops", "g", &BTreeMap::new(), &[&a], 1)
        .dedup_key;
    let k2 = g
        .notification("ops", "g", &BTreeMap::new(), &[&a], 2)
        .dedup_key;
    let k3 = g
        .notification("ops", "g", &BTreeMap::new(), &[&r], 3)
        .dedup_key;
    assert_eq!(k1, k2);
    assert_ne!(k1, k3);
}
