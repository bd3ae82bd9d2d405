//! A small client of systemd's D-Bus API on the system bus (zbus): list units by names and
//! patterns, read the few properties the systemd collector needs, and run a unit job
//! (restart, reload, start) up to its `JobRemoved` signal.
//!
//! Every call is bounded by a timeout, so a slow or hung bus (a known node_exporter problem)
//! never stalls a caller. The API is blocking: callers are the collector (on a blocking
//! thread) and repair actions (which block by contract). Each client owns a small
//! current-thread tokio runtime that only runs while a call is in progress; zbus uses tokio
//! (its `tokio` feature) rather than its own async-io executor, so no second executor is
//! compiled in. Not to be confused with [`crate::systemd`], which is sd_notify.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, MatchRule, MessageStream};

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// Why a call to systemd did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// No system bus to talk to: no socket, nobody listening, or the connection was refused
    /// before systemd could answer. The one case where a `systemctl` fallback makes sense.
    #[error("system bus unavailable: {0}")]
    Unavailable(String),
    /// systemd (through polkit) refused the call for this user.
    #[error("systemd refused: access denied (polkit): {0}")]
    AccessDenied(String),
    /// systemd answered with another error (no such unit, unit cannot be reloaded, ...).
    #[error("systemd: {message} ({name})")]
    Method {
        /// The D-Bus error name.
        name: String,
        /// systemd's message.
        message: String,
    },
    /// The job ran and ended with another result than `done`.
    #[error("job {verb} {unit} finished with result {result:?}")]
    JobFailed {
        /// The verb (`restart`).
        verb: &'static str,
        /// The unit.
        unit: String,
        /// systemd's result word: `failed`, `timeout`, `canceled`, `dependency`, `skipped`.
        result: String,
    },
    /// No answer within the timeout; a job already queued goes on inside systemd.
    #[error("{what}: no answer from systemd within {}", humantime::format_duration(*after))]
    TimedOut {
        /// What was waited for.
        what: String,
        /// The timeout.
        after: Duration,
    },
    /// Anything else (a reply of an unexpected shape, a broken connection).
    #[error("D-Bus: {0}")]
    Other(String),
}

impl From<zbus::Error> for BusError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => {
                let name = name.to_string();
                let message = message.unwrap_or_default();
                // Without an agent, polkit's "ask for a password" comes back as
                // InteractiveAuthorizationRequired; a plain "no" as AccessDenied.
                if name == "org.freedesktop.DBus.Error.AccessDenied"
                    || name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
                {
                    BusError::AccessDenied(if message.is_empty() { name } else { message })
                } else {
                    BusError::Method { name, message }
                }
            }
            other => BusError::Other(other.to_string()),
        }
    }
}

/// A unit as `ListUnitsByNames`/`ListUnitsByPatterns` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// Unit name (`nginx.service`).
    pub name: String,
    /// `loaded`, `not-found`, `masked`, ...
    pub load_state: String,
    /// `active`, `activating`, `deactivating`, `inactive`, `failed`, `reloading`.
    pub active_state: String,
    /// Type-specific state (`running`, `dead`, `auto-restart`, ...).
    pub sub_state: String,
    /// The unit's object path.
    pub path: String,
}

/// More properties of one unit, read one call each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitDetails {
    /// The unit's primary name (`Id`).
    pub id: String,
    /// `ActiveState`.
    pub active_state: String,
    /// `SubState`.
    pub sub_state: String,
    /// `LoadState`.
    pub load_state: String,
    /// Services: `Type` (`simple`, `notify`, `oneshot`, ...); mounts: the file system type;
    /// `None` for other unit types, as node_exporter leaves its `type` label empty for them.
    pub type_: Option<String>,
    /// Services: `NRestarts`, the automatic restarts since the unit was last started by hand.
    pub n_restarts: Option<u32>,
    /// `ActiveEnterTimestamp`, microseconds since the epoch (0: never active).
    pub active_enter_usec: u64,
    /// `InvocationID` as hex (changes with every start; empty if never started).
    pub invocation_id: String,
}

/// The unit jobs a repair may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobVerb {
    /// `RestartUnit`: stop if running, then start.
    Restart,
    /// `ReloadUnit`: the service's reload command; fails for units that cannot reload.
    Reload,
    /// `StartUnit`: start if not running.
    Start,
}

impl JobVerb {
    /// The `systemctl` verb (`restart`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobVerb::Restart => "restart",
            JobVerb::Reload => "reload",
            JobVerb::Start => "start",
        }
    }

    fn method(self) -> &'static str {
        match self {
            JobVerb::Restart => "RestartUnit",
            JobVerb::Reload => "ReloadUnit",
            JobVerb::Start => "StartUnit",
        }
    }
}

/// Whether `name` is a valid systemd unit name with a known type suffix (`nginx.service`,
/// `getty@tty1.service`): the characters systemd allows, at most 255 bytes. Names from
/// trigger labels go through this before they reach systemd or `systemctl`.
pub fn valid_unit_name(name: &str) -> bool {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "device",
        "mount",
        "automount",
        "swap",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return false;
    };
    name.len() <= 255
        && !stem.is_empty()
        && !name.starts_with('-')
        && TYPES.contains(&suffix)
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// A connection to systemd on the system bus.
pub struct SystemdBus {
    // Dropped before the runtime that drives it.
    conn: Connection,
    rt: tokio::runtime::Runtime,
    timeout: Duration,
}

impl std::fmt::Debug for SystemdBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemdBus")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SystemdBus {
    /// Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, else
    /// `/run/dbus/system_bus_socket`). `timeout` bounds the connection and, later, each call.
    pub fn connect(timeout: Duration) -> Result<SystemdBus, BusError> {
        Self::connect_to(None, timeout)
    }

    /// Connects to the bus at a D-Bus `address` (`unix:path=/run/dbus/system_bus_socket`).
    pub fn connect_address(address: &str, timeout: Duration) -> Result<SystemdBus, BusError> {
        Self::connect_to(Some(address), timeout)
    }

    fn connect_to(address: Option<&str>, timeout: Duration) -> Result<SystemdBus, BusError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| BusError::Other(format!("cannot start the D-Bus runtime: {e}")))?;
        let shown = address
            .map(str::to_owned)
            .or_else(|| std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok())
            .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".to_owned());
        let connecting = async {
            match address {
                Some(a) => zbus::connection::Builder::address(a)?.build().await,
                None => Connection::system().await,
            }
        };
        // The timer must be created inside the runtime, hence the async block.
        let conn = match rt.block_on(async { tokio::time::timeout(timeout, connecting).await }) {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(BusError::Unavailable(format!(
                    "{shown}: {}",
                    connect_reason(e)
                )))
            }
            Err(_) => {
                return Err(BusError::TimedOut {
                    what: "connecting to the system bus".to_owned(),
                    after: timeout,
                })
            }
        };
        Ok(SystemdBus { conn, rt, timeout })
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn block<T>(
        &self,
        what: &str,
        timeout: Duration,
        fut: impl Future<Output = Result<T, BusError>>,
    ) -> Result<T, BusError> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(timeout, fut).await })
        {
            Ok(r) => r,
            Err(_) => Err(BusError::TimedOut {
                what: what.to_owned(),
                after: timeout,
            }),
        }
    }

    /// The units named in `names` (also those not loaded or not found: systemd reports them
    /// with `load_state` `not-found`) and the loaded units whose names match one of the glob
    /// `patterns`, each once, sorted by name. One call for names, one for patterns.
    pub fn list_units(
        &self,
        names: &[String],
        patterns: &[String],
    ) -> Result<Vec<UnitStatus>, BusError> {
        let conn = self.conn.clone();
        self.block("listing units", self.timeout, async move {
            let mut units = Vec::new();
            if !names.is_empty() {
                let reply = conn
                    .call_method(
                        Some(DEST),
                        MANAGER_PATH,
                        Some(MANAGER),
                        "ListUnitsByNames",
                        &(names,),
                    )
                    .await?;
                units.extend(parse_units(&reply)?);
            }
            if !patterns.is_empty() {
                let states: &[&str] = &[];
                let reply = conn
                    .call_method(
                        Some(DEST),
                        MANAGER_PATH,
                        Some(MANAGER),
                        "ListUnitsByPatterns",
                        &(states, patterns),
                    )
                    .await?;
                units.extend(parse_units(&reply)?);
            }
            units.sort_by(|a, b| a.name.cmp(&b.name));
            units.dedup_by(|a, b| a.name == b.name);
            Ok(units)
        })
    }

    /// Reads [`UnitDetails`] of `unit` (by name: the unit is loaded if it is not).
    pub fn unit_details(&self, unit: &str) -> Result<UnitDetails, BusError> {
        let conn = self.conn.clone();
        let unit = unit.to_owned();
        self.block("reading unit properties", self.timeout, async move {
            let reply = conn
                .call_method(
                    Some(DEST),
                    MANAGER_PATH,
                    Some(MANAGER),
                    "LoadUnit",
                    &(&unit,),
                )
                .await?;
            let path: OwnedObjectPath = reply.body().deserialize().map_err(bad_reply)?;
            details(&conn, path.as_str()).await
        })
    }

    /// What the systemd collector needs of several listed units, read concurrently (the
    /// calls are pipelined on the one connection), in the order given: only the properties
    /// that apply (a service's `Type` and `NRestarts`, a mount's `Type`, an active unit's
    /// `ActiveEnterTimestamp`). The whole batch shares one timeout.
    pub fn metrics_of(&self, units: &[UnitStatus]) -> Result<Vec<UnitMetrics>, BusError> {
        let handles: Vec<_> = units
            .iter()
            .map(|u| {
                let conn = self.conn.clone();
                let u = u.clone();
                self.rt.spawn(async move { unit_metrics(&conn, &u).await })
            })
            .collect();
        let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
        let out = self.block("reading unit properties", self.timeout, async move {
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(h.await.map_err(|e| BusError::Other(e.to_string()))??);
            }
            Ok(out)
        });
        if out.is_err() {
            aborts.iter().for_each(|a| a.abort());
        }
        out
    }

    /// Changes the per-call timeout (the collector gives each call what is left of its
    /// deadline).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Runs a job on `unit` (`RestartUnit(unit, "replace")` and the like) and waits, at most
    /// `timeout`, for its `JobRemoved` signal. `Ok` only for the result `done`.
    ///
    /// The signal match is in place before the job is queued (a fast job can finish before
    /// the method's reply is read). systemd only puts its signals on the system bus while some
    /// client has called `Subscribe()` or the job tracks its requester (`bus_foreach_bus`);
    /// systemd 252 (Debian 12) tracks the requester, so the signal arrives even unsubscribed
    /// (tried in tests/systemd.rs), but `Subscribe()` is called anyway so that this does not
    /// depend on the version. The subscription ends with the connection.
    pub fn run_job(&self, verb: JobVerb, unit: &str, timeout: Duration) -> Result<(), BusError> {
        let conn = self.conn.clone();
        let unit = unit.to_owned();
        let what = format!("{} {unit}", verb.as_str());
        self.block(&what, timeout, async move {
            match conn
                .call_method(Some(DEST), MANAGER_PATH, Some(MANAGER), "Subscribe", &())
                .await
            {
                Ok(_) => {}
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
                Err(e) => return Err(e.into()),
            }
            let rule = MatchRule::builder()
                .msg_type(MessageType::Signal)
                .sender(DEST)?
                .path(MANAGER_PATH)?
                .interface(MANAGER)?
                .member("JobRemoved")?
                .build();
            let mut signals = MessageStream::for_match_rule(rule, &conn, Some(256)).await?;
            let reply = conn
                .call_method(
                    Some(DEST),
                    MANAGER_PATH,
                    Some(MANAGER),
                    verb.method(),
                    &(&unit, "replace"),
                )
                .await?;
            let job: OwnedObjectPath = reply.body().deserialize().map_err(bad_reply)?;
            while let Some(msg) = signals.next().await {
                let msg = msg?;
                let Ok((_id, path, _unit, result)) =
                    msg.body()
                        .deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path != job {
                    continue;
                }
                return if result == "done" {
                    Ok(())
                } else {
                    Err(BusError::JobFailed {
                        verb: verb.as_str(),
                        unit,
                        result,
                    })
                };
            }
            Err(BusError::Other(
                "the bus connection closed while waiting for the job".to_owned(),
            ))
        })
    }
}

async fn details(conn: &Connection, path: &str) -> Result<UnitDetails, BusError> {
    let (id, active, sub, load, enter, invocation) = tokio::try_join!(
        get(conn, path, UNIT, "Id"),
        get(conn, path, UNIT, "ActiveState"),
        get(conn, path, UNIT, "SubState"),
        get(conn, path, UNIT, "LoadState"),
        get(conn, path, UNIT, "ActiveEnterTimestamp"),
        get(conn, path, UNIT, "InvocationID"),
    )?;
    let invocation: Vec<u8> = Vec::try_from(invocation).map_err(|e| bad_reply(e.into()))?;
    let status = UnitStatus {
        name: string(id)?,
        load_state: string(load)?,
        active_state: string(active)?,
        sub_state: string(sub)?,
        path: path.to_owned(),
    };
    let m = unit_metrics(conn, &status).await?;
    Ok(UnitDetails {
        id: status.name,
        active_state: status.active_state,
        sub_state: status.sub_state,
        load_state: status.load_state,
        type_: m.type_,
        n_restarts: m.n_restarts,
        active_enter_usec: u64::try_from(enter).map_err(|e| bad_reply(e.into()))?,
        invocation_id: invocation.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// The properties behind the systemd collector's metrics, for one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitMetrics {
    /// As [`UnitDetails::type_`].
    pub type_: Option<String>,
    /// As [`UnitDetails::n_restarts`].
    pub n_restarts: Option<u32>,
    /// `ActiveEnterTimestamp` in microseconds when the unit is active, else 0 (as
    /// node_exporter reports it).
    pub active_enter_usec: u64,
}

async fn get(
    conn: &Connection,
    path: &str,
    iface: &str,
    prop: &str,
) -> Result<OwnedValue, BusError> {
    let reply = conn
        .call_method(Some(DEST), path, Some(PROPERTIES), "Get", &(iface, prop))
        .await?;
    reply.body().deserialize::<OwnedValue>().map_err(bad_reply)
}

fn string(v: OwnedValue) -> Result<String, BusError> {
    String::try_from(v).map_err(|e| bad_reply(e.into()))
}

async fn unit_metrics(conn: &Connection, u: &UnitStatus) -> Result<UnitMetrics, BusError> {
    const SERVICE: &str = "org.freedesktop.systemd1.Service";
    let path = u.path.as_str();
    let loaded = u.load_state == "loaded";
    let service = loaded && u.name.ends_with(".service");
    let mount = loaded && u.name.ends_with(".mount");
    let active = u.active_state == "active";
    let (type_, restarts, enter) = tokio::try_join!(
        async {
            match (service, mount) {
                (true, _) => get(conn, path, SERVICE, "Type").await.map(Some),
                (_, true) => get(conn, path, "org.freedesktop.systemd1.Mount", "Type")
                    .await
                    .map(Some),
                _ => Ok(None),
            }
        },
        async {
            match service {
                true => get(conn, path, SERVICE, "NRestarts").await.map(Some),
                false => Ok(None),
            }
        },
        async {
            match active {
                true => get(conn, path, UNIT, "ActiveEnterTimestamp")
                    .await
                    .map(Some),
                false => Ok(None),
            }
        },
    )?;
    Ok(UnitMetrics {
        type_: type_.map(string).transpose()?,
        n_restarts: restarts
            .map(|v| u32::try_from(v).map_err(|e| bad_reply(e.into())))
            .transpose()?,
        active_enter_usec: enter
            .map(|v| u64::try_from(v).map_err(|e| bad_reply(e.into())))
            .transpose()?
            .unwrap_or(0),
    })
}

type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

fn parse_units(reply: &zbus::Message) -> Result<Vec<UnitStatus>, BusError> {
    let rows: Vec<UnitRow> = reply.body().deserialize().map_err(bad_reply)?;
    Ok(rows
        .into_iter()
        .map(
            |(name, _desc, load, active, sub, _following, path, ..)| UnitStatus {
                name,
                load_state: load,
                active_state: active,
                sub_state: sub,
                path: path.to_string(),
            },
        )
        .collect())
}

fn bad_reply(e: zbus::Error) -> BusError {
    BusError::Other(format!("unexpected reply from systemd: {e}"))
}

/// Says why the bus could not be reached: the OS error where there is one.
fn connect_reason(e: zbus::Error) -> String {
    match &e {
        zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _) => io.to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_are_checked() {
        for ok in [
            "nginx.service",
            "getty@tty1.service",
            "app-web.service",
            "dev-sda1.device",
            "var-lib\\x2dx.mount",
            "a:b_c.socket",
        ] {
            assert!(valid_unit_name(ok), "{ok}");
        }
        for bad in [
            "",
            "nginx",
            ".service",
            "-x.service",
            "nginx.servic",
            "a b.service",
            "a/b.service",
            "a;reboot.service",
            "$(x).service",
        ] {
            assert!(!valid_unit_name(bad), "{bad}");
        }
        assert!(!valid_unit_name(&format!("{}.service", "a".repeat(250))));
    }

    #[test]
    fn polkit_denials_are_told_apart() {
        let e = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.DBus.Error.AccessDenied")
                .unwrap(),
            Some("Access denied".to_owned()),
            zbus::Message::method_call("/", "x")
                .unwrap()
                .build(&())
                .unwrap(),
        );
        let b = BusError::from(e);
        assert_eq!(b, BusError::AccessDenied("Access denied".to_owned()));
        assert_eq!(
            b.to_string(),
            "systemd refused: access denied (polkit): Access denied"
        );
        let e = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.systemd1.NoSuchUnit").unwrap(),
            Some("Unit x.service not found.".to_owned()),
            zbus::Message::method_call("/", "x")
                .unwrap()
                .build(&())
                .unwrap(),
        );
        assert!(matches!(BusError::from(e), BusError::Method { .. }));
    }

    #[test]
    fn no_bus_is_unavailable_not_a_hang() {
        // A socket path that does not exist: the client must say so, as "unavailable" (the
        // case a caller may fall back from), naming the address.
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("unix:path={}", dir.path().join("nope").display());
        let e = SystemdBus::connect_address(&addr, Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, BusError::Unavailable(_)), "{e:?}");
        assert!(e.to_string().contains(&addr), "{e}");
        assert!(e.to_string().contains("No such file"), "{e}");
    }
}
