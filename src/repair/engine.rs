//! One repair rule's state machine, a pure function of the trigger and the time, so cooldowns,
//! attempt windows, giving up and re-arming are tested without clocks or processes.
//!
//! ```text
//!            trigger holds, limits allow            action done ok
//!   armed ───────────────────────────────▶ running ──────────────▶ verifying
//!     ▲  ▲                                    │ failed/refused         │ after `settle`:
//!     │  └────────────────────────────────────┘                        │ fixed / not fixed
//!     │  ◀──────────────────────────────────────────────────────────────┘
//!     │ trigger clear for `rearm_after`, or `repair reset`
//!   gave_up ◀── trigger holds but `max_attempts` used within `window`
//! ```
//!
//! Why it is shaped like this (Monit's known problems, avoided):
//! - attempts are timestamps in a sliding `window`, so they age out on their own: a counter
//!   never needs a reset to stop counting old failures, and nothing resets it by accident;
//! - the state is saved (see [`super::db`]), so a daemon restart neither forgets attempts nor
//!   re-arms a rule that gave up;
//! - giving up is a state with a notification, and it ends by itself once the trigger has
//!   been clear for `rearm_after` (or by `automon repair reset`), so it never waits for a
//!   human to notice;
//! - a skip (cooldown, paused, busy target) is recorded once per episode, not every check.

use serde::{Deserialize, Serialize};

use super::db::Event;

/// A rule's limits, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Least time between two attempts.
    pub cooldown_ms: i64,
    /// Most attempts within `window_ms`.
    pub max_attempts: u32,
    /// The sliding window.
    pub window_ms: i64,
    /// Wait after an action before verifying.
    pub settle_ms: i64,
    /// Clear time that re-arms a rule that gave up.
    pub rearm_ms: i64,
}

impl Limits {
    /// From a rule's configuration.
    pub fn from_config(c: &crate::config::repair::RepairRuleConfig) -> Limits {
        let ms = |d: crate::config::HumanDuration| d.0.as_millis() as i64;
        Limits {
            cooldown_ms: ms(c.cooldown),
            max_attempts: c.max_attempts,
            window_ms: ms(c.window),
            settle_ms: ms(c.settle),
            rearm_ms: ms(c.rearm_after),
        }
    }
}

/// Where a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Watching the trigger.
    #[default]
    Armed,
    /// Its action runs.
    Running {
        /// Attempt id (the audit row of `started`).
        attempt: i64,
        /// When it started, Unix ms.
        started_ms: i64,
    },
    /// Its action succeeded; the trigger is checked again at `at_ms`.
    Verifying {
        /// Attempt id.
        attempt: i64,
        /// When to check, Unix ms.
        at_ms: i64,
    },
    /// Attempts used up; acts again after re-arming.
    GaveUp {
        /// Since when, Unix ms.
        since_ms: i64,
    },
}

impl Phase {
    /// The value of `automon_repair_state{rule}`.
    pub fn code(self) -> f64 {
        match self {
            Phase::Armed => 0.0,
            Phase::Running { .. } => 1.0,
            Phase::Verifying { .. } => 2.0,
            Phase::GaveUp { .. } => 3.0,
        }
    }

    /// The name shown by the API and CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Armed => "armed",
            Phase::Running { .. } => "running",
            Phase::Verifying { .. } => "verifying",
            Phase::GaveUp { .. } => "gave_up",
        }
    }
}

/// Why a rule did not act although its trigger held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// `repair.enabled = false`.
    Disabled,
    /// `automon repair pause`.
    Paused,
    /// Too soon after the last attempt.
    Cooldown,
    /// The rule gave up.
    GaveUp,
    /// The trigger no longer held when re-checked just before acting.
    Cleared,
    /// Another action runs on the same target.
    TargetBusy,
    /// `repair.max_concurrent` actions run already.
    Concurrency,
}

/// A rule's state; saved after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    /// Where it is.
    pub phase: Phase,
    /// Start times of attempts within the window, oldest first.
    pub attempts: Vec<i64>,
    /// The last attempt or dry run, for the cooldown.
    pub last_attempt_ms: Option<i64>,
    /// Whether the trigger held at the last check (episodes start on the rising edge).
    pub held: bool,
    /// Since when the trigger has been clear.
    pub clear_since_ms: Option<i64>,
    /// The skip already recorded in this episode.
    pub noted: Option<Skip>,
}

/// What the runner is to do after a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write an audit row.
    Record(Event, String),
    /// Act now: the runner re-checks the trigger, the target and the concurrency limit, then
    /// starts the action (or the dry run) and reports back.
    Act,
    /// Check the trigger now and report with [`RuleState::verified`].
    Verify {
        /// The attempt being verified.
        attempt: i64,
    },
    /// The rule just gave up: notify.
    GaveUp,
    /// The rule just re-armed: resolve that notification.
    Rearmed,
}

/// What the daemon-wide switches say at this check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// `repair.enabled`.
    pub enabled: bool,
    /// `automon repair pause`.
    pub paused: bool,
}

fn fmt_ms(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(
        (ms.max(0) as u64).div_ceil(1000),
    ))
    .to_string()
}

impl RuleState {
    /// One check at `now`: `holds` is the trigger's verdict (with `for` applied).
    pub fn tick(&mut self, now: i64, holds: bool, gate: Gate, limits: &Limits) -> Vec<Step> {
        let mut steps = Vec::new();
        let rising = holds && !self.held;
        self.held = holds;
        if holds {
            self.clear_since_ms = None;
        } else {
            self.clear_since_ms.get_or_insert(now);
            self.noted = None;
        }
        self.attempts.retain(|&t| t > now - limits.window_ms);
        if rising && !matches!(self.phase, Phase::Running { .. } | Phase::Verifying { .. }) {
            steps.push(Step::Record(Event::Triggered, String::new()));
        }
        match self.phase {
            Phase::Running { .. } => {}
            Phase::Verifying { attempt, at_ms } => {
                if now >= at_ms {
                    steps.push(Step::Verify { attempt });
                }
            }
            Phase::GaveUp { .. } => {
                let clear_for = self.clear_since_ms.map(|t| now - t);
                if clear_for.is_some_and(|c| c >= limits.rearm_ms) {
                    self.rearm();
                    steps.push(Step::Record(
                        Event::Rearmed,
                        format!("trigger clear for {}", fmt_ms(limits.rearm_ms)),
                    ));
                    steps.push(Step::Rearmed);
                } else if holds {
                    steps.extend(self.skip(
                        Skip::GaveUp,
                        "the rule gave up; it re-arms when \
                        the trigger has been clear for rearm_after, or by `automon repair reset`",
                    ));
                }
            }
            Phase::Armed => {
                if holds {
                    steps.extend(self.armed(now, gate, limits));
                }
            }
        }
        steps
    }

    fn armed(&mut self, now: i64, gate: Gate, limits: &Limits) -> Vec<Step> {
        if !gate.enabled {
            return self
                .skip(Skip::Disabled, "repair.enabled = false")
                .into_iter()
                .collect();
        }
        if gate.paused {
            return self
                .skip(
                    Skip::Paused,
                    "repairs are paused (`automon repair resume` resumes them)",
                )
                .into_iter()
                .collect();
        }
        // Out of attempts: give up now (and say so), not after another cooldown.
        if self.attempts.len() as u32 >= limits.max_attempts {
            return self.give_up(now, limits, "the trigger holds again");
        }
        if let Some(last) = self.last_attempt_ms {
            let wait = last + limits.cooldown_ms - now;
            if wait > 0 {
                let why = format!(
                    "cooldown: the last attempt was {} ago; next one possible in {}",
                    fmt_ms((now - last) / 1000 * 1000),
                    fmt_ms(wait)
                );
                return self.skip(Skip::Cooldown, &why).into_iter().collect();
            }
        }
        vec![Step::Act]
    }

    fn give_up(&mut self, now: i64, limits: &Limits, why: &str) -> Vec<Step> {
        self.phase = Phase::GaveUp { since_ms: now };
        self.noted = Some(Skip::GaveUp);
        vec![
            Step::Record(
                Event::GaveUp,
                format!(
                    "{why} and all {} attempts allowed within {} are used; no more attempts \
                     until the trigger has been clear for {} or `automon repair reset`",
                    self.attempts.len(),
                    fmt_ms(limits.window_ms),
                    fmt_ms(limits.rearm_ms)
                ),
            ),
            Step::GaveUp,
        ]
    }

    /// Records a skip once per episode: returns the row to write, if not written yet.
    pub fn skip(&mut self, why: Skip, detail: &str) -> Option<Step> {
        if self.noted == Some(why) {
            return None;
        }
        self.noted = Some(why);
        Some(Step::Record(Event::Skipped, detail.to_owned()))
    }

    /// The action started as attempt `attempt`.
    pub fn started(&mut self, attempt: i64, now: i64) {
        self.phase = Phase::Running {
            attempt,
            started_ms: now,
        };
        self.attempts.push(now);
        self.last_attempt_ms = Some(now);
        self.noted = None;
    }

    /// A refusal or a dry run: counts for the cooldown; a refusal also as an attempt, so a
    /// rule that can never act ends up giving up and saying so.
    pub fn acted_without_running(&mut self, now: i64, counts_as_attempt: bool) {
        if counts_as_attempt {
            self.attempts.push(now);
        }
        self.last_attempt_ms = Some(now);
        self.noted = None;
    }

    /// The action of `attempt` finished; success moves on to verification.
    pub fn finished(&mut self, attempt: i64, ok: bool, now: i64, limits: &Limits) {
        if !matches!(self.phase, Phase::Running { attempt: a, .. } if a == attempt) {
            return;
        }
        self.phase = if ok {
            Phase::Verifying {
                attempt,
                at_ms: now + limits.settle_ms,
            }
        } else {
            Phase::Armed
        };
    }

    /// The verification of `attempt`: `still_holds` is the trigger checked just now.
    pub fn verified(
        &mut self,
        attempt: i64,
        still_holds: bool,
        now: i64,
        limits: &Limits,
    ) -> Vec<Step> {
        if !matches!(self.phase, Phase::Verifying { attempt: a, .. } if a == attempt) {
            return Vec::new();
        }
        self.phase = Phase::Armed;
        if !still_holds {
            return vec![Step::Record(
                Event::Fixed,
                "the trigger no longer holds".into(),
            )];
        }
        let mut steps = vec![Step::Record(
            Event::NotFixed,
            "the trigger still holds".into(),
        )];
        self.attempts.retain(|&t| t > now - limits.window_ms);
        // Out of attempts and still broken: say so now rather than after another cooldown.
        if self.attempts.len() as u32 >= limits.max_attempts {
            steps.extend(self.give_up(now, limits, "the last attempt did not fix it"));
        }
        steps
    }

    /// After a daemon restart: an action that was running has an unknown result.
    pub fn restored(&mut self) -> Option<Step> {
        if let Phase::Running { .. } = self.phase {
            self.phase = Phase::Armed;
            return Some(Step::Record(
                Event::Interrupted,
                "the daemon stopped while the action ran; its result is unknown".into(),
            ));
        }
        None
    }

    /// Back to armed with no attempts counted.
    pub fn rearm(&mut self) {
        self.phase = Phase::Armed;
        self.attempts.clear();
        self.last_attempt_ms = None;
        self.noted = None;
    }

    /// Attempts within the window at `now`.
    pub fn attempts_in_window(&self, now: i64, limits: &Limits) -> usize {
        self.attempts
            .iter()
            .filter(|&&t| t > now - limits.window_ms)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const ON: Gate = Gate {
        enabled: true,
        paused: false,
    };

    fn limits() -> Limits {
        Limits {
            cooldown_ms: 60 * S,
            max_attempts: 2,
            window_ms: 600 * S,
            settle_ms: 10 * S,
            rearm_ms: 120 * S,
        }
    }

    fn events(steps: &[Step]) -> Vec<&'static str> {
        steps
            .iter()
            .map(|s| match s {
                Step::Record(e, _) => e.as_str(),
                Step::Act => "act",
                Step::Verify { .. } => "verify",
                Step::GaveUp => "notify_gave_up",
                Step::Rearmed => "notify_rearmed",
            })
            .collect()
    }

    /// Runs an attempt from `Act` to a verification with `fixed`.
    fn attempt(s: &mut RuleState, id: i64, t: i64, fixed: bool, l: &Limits) -> Vec<Step> {
        s.started(id, t);
        s.finished(id, true, t + S, l);
        assert_eq!(events(&s.tick(t + 5 * S, true, ON, l)), Vec::<&str>::new());
        assert_eq!(events(&s.tick(t + 11 * S, true, ON, l)), vec!["verify"]);
        s.verified(id, !fixed, t + 11 * S, l)
    }

    #[test]
    fn trigger_acts_then_verifies_fixed() {
        let l = limits();
        let mut s = RuleState::default();
        assert!(s.tick(0, false, ON, &l).is_empty());
        assert_eq!(events(&s.tick(S, true, ON, &l)), vec!["triggered", "act"]);
        assert_eq!(events(&attempt(&mut s, 7, S, true, &l)), vec!["fixed"]);
        assert_eq!(s.phase, Phase::Armed);
        assert_eq!(s.attempts, vec![S]);
    }

    #[test]
    fn second_outage_within_cooldown_is_skipped_once_then_acts() {
        let l = limits();
        let mut s = RuleState::default();
        s.tick(0, true, ON, &l);
        attempt(&mut s, 1, 0, true, &l);
        s.tick(12 * S, false, ON, &l);
        let steps = s.tick(20 * S, true, ON, &l);
        assert_eq!(events(&steps), vec!["triggered", "skipped"]);
        let Step::Record(_, why) = &steps[1] else {
            panic!()
        };
        assert!(why.starts_with("cooldown"), "{why}");
        // Recorded once, not every check.
        assert!(s.tick(30 * S, true, ON, &l).is_empty());
        assert_eq!(events(&s.tick(60 * S, true, ON, &l)), vec!["act"]);
    }

    #[test]
    fn gives_up_after_max_attempts_and_rearms_after_clear() {
        let l = limits();
        let mut s = RuleState::default();
        s.tick(0, true, ON, &l);
        assert_eq!(events(&attempt(&mut s, 1, 0, true, &l)), vec!["fixed"]);
        s.tick(70 * S, false, ON, &l);
        assert_eq!(
            events(&s.tick(80 * S, true, ON, &l)),
            vec!["triggered", "act"]
        );
        // The second attempt does not fix it and was the last one allowed: give up at once.
        assert_eq!(
            events(&attempt(&mut s, 2, 80 * S, false, &l)),
            vec!["not_fixed", "gave_up", "notify_gave_up"]
        );
        assert!(matches!(s.phase, Phase::GaveUp { .. }));
        // Still broken: nothing more, not even a skip row per check.
        assert!(s.tick(200 * S, true, ON, &l).is_empty());
        // Clear, but not long enough.
        assert!(s.tick(210 * S, false, ON, &l).is_empty());
        assert!(s.tick(300 * S, false, ON, &l).is_empty());
        assert_eq!(
            events(&s.tick(330 * S, false, ON, &l)),
            vec!["rearmed", "notify_rearmed"]
        );
        assert!(s.attempts.is_empty());
        assert_eq!(
            events(&s.tick(331 * S, true, ON, &l)),
            vec!["triggered", "act"]
        );
    }

    #[test]
    fn a_new_trigger_after_attempts_ran_out_gives_up() {
        let l = limits();
        let mut s = RuleState::default();
        s.tick(0, true, ON, &l);
        attempt(&mut s, 1, 0, true, &l);
        s.tick(70 * S, false, ON, &l);
        s.tick(80 * S, true, ON, &l);
        attempt(&mut s, 2, 80 * S, true, &l);
        s.tick(100 * S, false, ON, &l);
        assert_eq!(
            events(&s.tick(150 * S, true, ON, &l)),
            vec!["triggered", "gave_up", "notify_gave_up"]
        );
    }

    #[test]
    fn attempts_age_out_of_the_window() {
        let l = limits();
        let mut s = RuleState::default();
        s.tick(0, true, ON, &l);
        attempt(&mut s, 1, 0, true, &l);
        s.tick(70 * S, false, ON, &l);
        s.tick(80 * S, true, ON, &l);
        attempt(&mut s, 2, 80 * S, true, &l);
        s.tick(100 * S, false, ON, &l);
        // Past the window of the first attempt: one attempt counted, so it acts.
        assert_eq!(
            events(&s.tick(601 * S, true, ON, &l)),
            vec!["triggered", "act"]
        );
        assert_eq!(s.attempts_in_window(601 * S, &l), 1);
    }

    #[test]
    fn failed_action_goes_back_to_armed_under_cooldown() {
        let l = limits();
        let mut s = RuleState::default();
        s.tick(0, true, ON, &l);
        s.started(3, 0);
        s.finished(3, false, S, &l);
        assert_eq!(s.phase, Phase::Armed);
        assert_eq!(events(&s.tick(2 * S, true, ON, &l)), vec!["skipped"]);
        // A stale result for another attempt changes nothing.
        s.finished(99, true, 3 * S, &l);
        assert_eq!(s.phase, Phase::Armed);
    }

    #[test]
    fn paused_and_disabled_are_skips() {
        let l = limits();
        let mut s = RuleState::default();
        let paused = Gate {
            enabled: true,
            paused: true,
        };
        assert_eq!(
            events(&s.tick(0, true, paused, &l)),
            vec!["triggered", "skipped"]
        );
        assert!(s.tick(S, true, paused, &l).is_empty());
        assert_eq!(events(&s.tick(2 * S, true, ON, &l)), vec!["act"]);
        let off = Gate {
            enabled: false,
            paused: false,
        };
        let mut s = RuleState::default();
        assert_eq!(
            events(&s.tick(0, true, off, &l)),
            vec!["triggered", "skipped"]
        );
    }

    #[test]
    fn a_refusal_counts_as_an_attempt_and_a_dry_run_only_for_cooldown() {
        let l = limits();
        let mut s = RuleState::default();
        s.tick(0, true, ON, &l);
        s.acted_without_running(0, false);
        assert!(s.attempts.is_empty());
        assert_eq!(events(&s.tick(S, true, ON, &l)), vec!["skipped"]);
        s.acted_without_running(61 * S, true);
        assert_eq!(s.attempts, vec![61 * S]);
    }

    #[test]
    fn restart_during_an_action_records_interruption() {
        let mut s = RuleState::default();
        s.started(5, 0);
        let saved = serde_json::to_string(&s).unwrap();
        let mut back: RuleState = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, s);
        assert!(matches!(
            back.restored(),
            Some(Step::Record(Event::Interrupted, _))
        ));
        assert_eq!(back.phase, Phase::Armed);
        assert_eq!(back.attempts, vec![0]);
    }
}
