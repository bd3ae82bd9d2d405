//! systemd units over the system D-Bus: `node_systemd_unit_state{name,state,type}`,
//! `node_systemd_service_restart_total{name}` and `node_systemd_unit_start_time_seconds{name}`,
//! named and labelled as node_exporter's systemd collector does, for the units named in the
//! config and those matching its patterns.
//!
//! node_exporter lists every unit and filters afterwards; this asks systemd for the named
//! units and the pattern matches only (`ListUnitsByNames`, `ListUnitsByPatterns`), so a host
//! with thousands of units costs what the watched ones cost. Every call is bounded by what is
//! left of the collection's deadline: a hung bus makes one collection fail, never stalls the
//! scheduler.

use std::time::{Duration, Instant};

use super::{Collection, Collector, CollectorError};
use crate::config::SystemdConfig;
use crate::model::Family;
use crate::systemd_dbus::{SystemdBus, UnitMetrics, UnitStatus};

/// The `state` label values, in node_exporter's order; each unit has one series per state,
/// 1 for its current `ActiveState` and 0 for the others. (`reloading` is not among them, as
/// in node_exporter: a reloading unit has all five at 0.)
pub const UNIT_STATES: &[&str] = &["active", "activating", "deactivating", "inactive", "failed"];

/// The collector. The bus connection is kept between collections and dropped after an
/// error, so the next collection starts from a fresh one.
#[derive(Debug)]
pub struct SystemdCollector {
    units: Vec<String>,
    patterns: Vec<String>,
    wait: Duration,
    /// A D-Bus address instead of the system bus (tests).
    address: Option<String>,
    bus: Option<SystemdBus>,
}

impl SystemdCollector {
    /// From `[collectors.systemd]`; `timeout` is the collection's deadline. Does not connect:
    /// a missing bus is a collection error, not a reason to refuse to build.
    pub fn new(cfg: &SystemdConfig, timeout: Duration) -> Result<Self, CollectorError> {
        // Leave the scheduler a margin to take the result before its own deadline.
        let wait = timeout.saturating_sub((timeout / 10).min(Duration::from_millis(500)));
        Ok(SystemdCollector {
            units: cfg.units.clone(),
            patterns: cfg.unit_patterns.clone(),
            wait,
            address: None,
            bus: None,
        })
    }

    fn read(
        &mut self,
        deadline: Instant,
    ) -> Result<Vec<(UnitStatus, UnitMetrics)>, CollectorError> {
        let left = || deadline.saturating_duration_since(Instant::now());
        let bus = match &mut self.bus {
            Some(bus) => bus,
            None => {
                let bus = match &self.address {
                    Some(a) => SystemdBus::connect_address(a, left()),
                    None => SystemdBus::connect(left()),
                };
                self.bus.insert(bus.map_err(err)?)
            }
        };
        bus.set_timeout(left());
        let units = bus.list_units(&self.units, &self.patterns).map_err(err)?;
        bus.set_timeout(left());
        let metrics = bus.metrics_of(&units).map_err(err)?;
        Ok(units.into_iter().zip(metrics).collect())
    }
}

fn err(e: crate::systemd_dbus::BusError) -> CollectorError {
    CollectorError::Other(format!("systemd over D-Bus: {e}"))
}

impl Collector for SystemdCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let deadline = Instant::now() + self.wait;
        match self.read(deadline) {
            Ok(units) => Ok(families(&units).into()),
            Err(e) => {
                self.bus = None;
                Err(e)
            }
        }
    }
}

/// The metric families for the units read.
pub fn families(units: &[(UnitStatus, UnitMetrics)]) -> Vec<Family> {
    let mut state = Family::gauge("node_systemd_unit_state", "Systemd unit");
    let mut restarts = Family::counter(
        "node_systemd_service_restart_total",
        "Service unit count of Restart triggers",
    );
    let mut start = Family::gauge(
        "node_systemd_unit_start_time_seconds",
        "Start time of the unit since unix epoch in seconds.",
    );
    for (u, m) in units {
        let name = u.name.as_str();
        let type_ = m.type_.as_deref().unwrap_or("");
        for s in UNIT_STATES {
            let v = if u.active_state == *s { 1.0 } else { 0.0 };
            state.push(&[("name", name), ("state", s), ("type", type_)], v);
        }
        if let Some(n) = m.n_restarts {
            restarts.push(&[("name", name)], f64::from(n));
        }
        start.push(&[("name", name)], m.active_enter_usec as f64 / 1e6);
    }
    vec![state, restarts, start]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, active: &str, load: &str) -> UnitStatus {
        UnitStatus {
            name: name.to_owned(),
            load_state: load.to_owned(),
            active_state: active.to_owned(),
            sub_state: String::new(),
            path: String::new(),
        }
    }

    #[test]
    fn one_series_per_state_with_type_and_restarts() {
        let units = vec![
            (
                unit("nginx.service", "active", "loaded"),
                UnitMetrics {
                    type_: Some("notify".to_owned()),
                    n_restarts: Some(3),
                    active_enter_usec: 1_700_000_000_250_000,
                },
            ),
            (
                unit("boot.mount", "failed", "loaded"),
                UnitMetrics {
                    type_: Some("ext4".to_owned()),
                    n_restarts: None,
                    active_enter_usec: 0,
                },
            ),
            (
                unit("gone.service", "inactive", "not-found"),
                UnitMetrics::default(),
            ),
        ];
        let f = families(&units);
        let text: String = f.iter().fold(String::new(), |mut out, fam| {
            crate::model::render_family(&mut out, fam);
            out
        });
        for line in [
            "node_systemd_unit_state{name=\"nginx.service\",state=\"active\",type=\"notify\"} 1",
            "node_systemd_unit_state{name=\"nginx.service\",state=\"failed\",type=\"notify\"} 0",
            "node_systemd_unit_state{name=\"boot.mount\",state=\"failed\",type=\"ext4\"} 1",
            "node_systemd_unit_state{name=\"boot.mount\",state=\"active\",type=\"ext4\"} 0",
            "node_systemd_unit_state{name=\"gone.service\",state=\"inactive\",type=\"\"} 1",
            "node_systemd_service_restart_total{name=\"nginx.service\"} 3",
            "node_systemd_unit_start_time_seconds{name=\"nginx.service\"} 1700000000.25",
            "node_systemd_unit_start_time_seconds{name=\"boot.mount\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        assert_eq!(f[0].samples.len(), 15);
        // Only loaded services have a restart count.
        assert_eq!(f[1].samples.len(), 1);
        assert!(text.contains("# TYPE node_systemd_service_restart_total counter"));
    }

    #[test]
    fn no_bus_is_a_collection_error_and_the_next_run_tries_again() {
        // Run against a bus address that does not exist, as on a host without D-Bus.
        let mut c = SystemdCollector::new(
            &SystemdConfig {
                enabled: true,
                units: vec!["x.service".to_owned()],
                ..Default::default()
            },
            Duration::from_secs(5),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        c.address = Some(format!("unix:path={}", dir.path().join("bus").display()));
        for _ in 0..2 {
            let e = c.collect().unwrap_err();
            assert!(e.to_string().contains("system bus unavailable"), "{e}");
            assert!(c.bus.is_none());
        }
    }
}
