//! Circuit breakers, one per service (SPEC §9): after `failures` failed attempts within a sliding
//! `within` window the circuit opens for `open_for`; then one trial attempt is let through while
//! every other attempt still fails at once; the trial's success closes the circuit, its failure
//! opens it again.
//!
//! Breakers are keyed by service name and live beside the backend client, not in the plan, so a
//! reload keeps their state. Composition calls and passthrough routes share them. Time comes from
//! the injected clock.

use crate::clock::Clock;
use crate::config::model::CircuitBreakerConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What a breaker is doing, as `facade_circuit_breaker_state` reports it (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed = 0,
    /// Calls fail at once.
    Open = 1,
    /// The open time is over: one trial call decides.
    HalfOpen = 2,
}

#[derive(Debug)]
enum Phase {
    Closed { failures: VecDeque<Duration> },
    Open { until: Duration },
    HalfOpen { trial_in_flight: bool },
}

/// One service's breaker.
#[derive(Debug)]
pub struct Breaker {
    config: Mutex<CircuitBreakerConfig>,
    phase: Mutex<Phase>,
    clock: Arc<dyn Clock>,
}

/// The right to make one attempt. Report its outcome with `record`; a permit dropped without one
/// (the request was cancelled) frees the trial slot without judging the backend.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    trial: bool,
    recorded: bool,
}

impl Permit {
    /// Reports the attempt: `failed` for a connect error, a timeout or a 5xx.
    pub fn record(mut self, failed: bool) {
        self.recorded = true;
        self.breaker.record(self.trial, failed);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            let mut phase = self.breaker.phase.lock().unwrap_or_else(|p| p.into_inner());
            if let Phase::HalfOpen { trial_in_flight } = &mut *phase {
                *trial_in_flight = false;
            }
        }
    }
}

impl Breaker {
    fn new(config: CircuitBreakerConfig, clock: Arc<dyn Clock>) -> Breaker {
        Breaker {
            config: Mutex::new(config),
            phase: Mutex::new(Phase::Closed {
                failures: VecDeque::new(),
            }),
            clock,
        }
    }

    /// Lets an attempt through, or refuses it while the circuit is open (or a trial is running)
    /// with how long until a trial may go (a running trial's outcome: a second, at most).
    pub fn admit(self: &Arc<Breaker>) -> Result<Permit, Duration> {
        let now = self.clock.now();
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let trial = match &mut *phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } if now < *until => return Err(*until - now),
            Phase::Open { .. } => {
                *phase = Phase::HalfOpen { trial_in_flight: true };
                true
            }
            Phase::HalfOpen { trial_in_flight: true } => return Err(Duration::from_secs(1)),
            Phase::HalfOpen { trial_in_flight } => {
                *trial_in_flight = true;
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            trial,
            recorded: false,
        })
    }

    fn record(&self, trial: bool, failed: bool) {
        let now = self.clock.now();
        let config = *self.config.lock().unwrap_or_else(|p| p.into_inner());
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *phase {
            Phase::HalfOpen { .. } if trial => {
                *phase = if failed {
                    Phase::Open {
                        until: now + config.open_for,
                    }
                } else {
                    Phase::Closed {
                        failures: VecDeque::new(),
                    }
                };
            }
            Phase::Closed { failures } if failed => {
                let window_start = now.saturating_sub(config.within);
                while failures.front().is_some_and(|t| *t < window_start) {
                    failures.pop_front();
                }
                failures.push_back(now);
                if failures.len() as u32 >= config.failures.max(1) {
                    *phase = Phase::Open {
                        until: now + config.open_for,
                    };
                }
            }
            // A success while closed changes nothing (the window counts failures only); an
            // attempt admitted before the circuit opened does not move an open circuit.
            _ => {}
        }
    }

    /// The state now, for metrics and tests.
    pub fn state(&self) -> BreakerState {
        let now = self.clock.now();
        match &*self.phase.lock().unwrap_or_else(|p| p.into_inner()) {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now < *until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Admits an attempt through an optional breaker: `Ok(None)` without one, `Err(wait)` while it
/// is open (`wait`: until a trial may go).
pub fn admit(breaker: Option<&Arc<Breaker>>) -> Result<Option<Permit>, Duration> {
    match breaker {
        Some(b) => b.admit().map(Some),
        None => Ok(None),
    }
}

/// Every service's breaker, by service name.
#[derive(Debug)]
pub struct Breakers {
    by_service: RwLock<HashMap<String, Arc<Breaker>>>,
    clock: Arc<dyn Clock>,
}

impl Breakers {
    /// No breakers yet; they are made on first use.
    pub fn new(clock: Arc<dyn Clock>) -> Breakers {
        Breakers {
            by_service: RwLock::new(HashMap::new()),
            clock,
        }
    }

    /// The breaker of `service` under `config` (the configuration in force: a reload that
    /// changes the thresholds applies them to the running breaker, keeping its state).
    pub fn get(&self, service: &str, config: &CircuitBreakerConfig) -> Arc<Breaker> {
        if let Some(b) = self.by_service.read().unwrap_or_else(|p| p.into_inner()).get(service) {
            let mut c = b.config.lock().unwrap_or_else(|p| p.into_inner());
            if *c != *config {
                *c = *config;
            }
            return b.clone();
        }
        let mut map = self.by_service.write().unwrap_or_else(|p| p.into_inner());
        map.entry(service.to_string())
            .or_insert_with(|| Arc::new(Breaker::new(*config, self.clock.clone())))
            .clone()
    }

    /// The state of a service's breaker, when it has one.
    pub fn state(&self, service: &str) -> Option<BreakerState> {
        self.by_service
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(service)
            .map(|b| b.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn config() -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            failures: 3,
            within: Duration::from_secs(10),
            open_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn closed_open_half_open_closed() {
        let clock = Arc::new(ManualClock::default());
        let breakers = Breakers::new(clock.clone());
        let b = breakers.get("users", &config());
        for _ in 0..2 {
            b.admit().unwrap().record(true);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // Failures older than the window no longer count.
        clock.advance(Duration::from_secs(11));
        b.admit().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap().record(true);
        b.admit().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit().err(), Some(Duration::from_secs(30)), "open for 30 s more");
        clock.advance(Duration::from_secs(12));
        assert_eq!(b.admit().err(), Some(Duration::from_secs(18)));
        clock.advance(Duration::from_secs(18));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let trial = b.admit().unwrap();
        // While the trial is in flight every other attempt still fails at once.
        assert_eq!(b.admit().err(), Some(Duration::from_secs(1)));
        trial.record(true);
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_secs(30));
        let trial = b.admit().unwrap();
        drop(b.admit());
        trial.record(false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
    }

    #[test]
    fn a_cancelled_trial_frees_the_slot() {
        let clock = Arc::new(ManualClock::default());
        let breakers = Breakers::new(clock.clone());
        let b = breakers.get("users", &config());
        for _ in 0..3 {
            b.admit().unwrap().record(true);
        }
        clock.advance(Duration::from_secs(31));
        drop(b.admit().unwrap());
        assert!(b.admit().is_ok());
    }
}
