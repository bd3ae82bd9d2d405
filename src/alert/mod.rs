//! Alerting: rules evaluated on the store, alert state, routing and grouping into
//! notifications, silences, the persistent outbox and the receivers that deliver.

pub mod notify;
