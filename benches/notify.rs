//! What a notification costs the notifiers: rendering the webhook JSON, the Slack message and
//! the email MIME message for a group of 1 and 100 alerts, and one complete webhook POST to
//! an in-process HTTP server on loopback (the receiver's share of the alert-to-webhook
//! latency budget).

use std::collections::BTreeMap;
use std::time::Duration;

use automon::alert::notify::webhook::WebhookNotifier;
use automon::alert::notify::{
    email, slack, webhook, AlertInfo, AlertStatus, Notification, Notifier,
};
use automon::config::receivers::WebhookConfig;
use automon::config::HumanDuration;
use criterion::{criterion_group, criterion_main, Criterion};

fn notification(alerts: usize) -> Notification {
    let labels = |i: usize| -> BTreeMap<String, String> {
        [
            ("alertname", "HostDiskFull".to_owned()),
            ("device", format!("sd{i}")),
            ("mountpoint", format!("/srv/{i}")),
            ("severity", "critical".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    };
    Notification {
        receiver: "oncall".into(),
        status: AlertStatus::Firing,
        group_key: "{}:{alertname=\"HostDiskFull\"}".into(),
        group_labels: [("alertname".to_owned(), "HostDiskFull".to_owned())].into(),
        common_labels: BTreeMap::new(),
        common_annotations: BTreeMap::new(),
        alerts: (0..alerts)
            .map(|i| AlertInfo {
                status: AlertStatus::Firing,
                labels: labels(i),
                annotations: [(
                    "summary".to_owned(),
                    format!("Filesystem /srv/{i} is 97% full"),
                )]
                .into(),
                starts_at_ms: 1_700_000_000_000,
                ends_at_ms: None,
                value: 0.97,
                fingerprint: format!("{i:016x}"),
                generator_url: "http://web1:9787/api/v1/query?query=x".into(),
            })
            .collect(),
        external_url: "http://web1:9787".into(),
        host: "web1".into(),
        dedup_key: "dk".into(),
        created_ms: 1_700_000_000_000,
    }
}

fn render(c: &mut Criterion) {
    let from: lettre::message::Mailbox = "automon@example.com".parse().unwrap();
    let to: lettre::message::Mailbox = "oncall@example.com".parse().unwrap();
    for n in [1, 100] {
        let notif = notification(n);
        c.bench_function(&format!("webhook_payload_{n}_alerts"), |b| {
            b.iter(|| webhook::payload_bytes(&notif, 0))
        });
        c.bench_function(&format!("slack_message_{n}_alerts"), |b| {
            b.iter(|| serde_json::to_vec(&slack::message(&notif)).unwrap())
        });
        c.bench_function(&format!("email_message_{n}_alerts"), |b| {
            b.iter(|| {
                email::message(&notif, &from, std::slice::from_ref(&to))
                    .unwrap()
                    .formatted()
            })
        });
    }
}

fn webhook_send(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    });
    let notifier = WebhookNotifier::new(&WebhookConfig {
        url: Some(url),
        hmac_secret: Some("k".into()),
        timeout: HumanDuration(Duration::from_secs(5)),
        ..WebhookConfig::default()
    })
    .unwrap();
    let notif = notification(10);
    c.bench_function("webhook_send_loopback_10_alerts_signed", |b| {
        b.iter(|| rt.block_on(notifier.send(&notif)).unwrap())
    });
}

criterion_group!(benches, render, webhook_send);
criterion_main!(benches);
