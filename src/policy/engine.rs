//! [`Policy`]: the compiled policy in force, its evaluation under a time limit, and hot reload.

use std::{
    num::NonZeroU32,
    path::PathBuf,
    sync::{
        Arc, Mutex, Once, OnceLock, PoisonError, RwLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use regorus::utils::limits::{ExecutionTimerConfig, TimeSource, set_time_source};
use tokio_util::sync::CancellationToken;

use super::{DENY_RULE, Decision, PolicyInput, files, reads};
use crate::config::policy::PolicyConfig;

/// Work units between two looks at the clock during an evaluation. A look costs tens of
/// nanoseconds; 16 keeps that under a few percent of the work while a runaway loop is still
/// caught within microseconds of the limit.
const TIMER_CHECK_INTERVAL: NonZeroU32 = NonZeroU32::new(16).expect("16 is not zero");

/// An evaluation under this long is cheap enough to run on an async worker.
const CHEAP: Duration = Duration::from_millis(1);

/// Cheap evaluations in a row after which a version counts as cheap ([`Compiled::is_cheap`]).
/// NB: a policy whose cost depends on the input (a loop over the labels, say) has to be cheap
/// this many times running before it leaves the blocking pool, and goes back on its first
/// slow evaluation.
const CHEAP_STREAK: u32 = 16;

/// The execution timer's clock. NB: regorus reads the time through a process-wide source; with
/// its `std` feature that is `Instant`, but that feature needs Rust 1.95 (parking_lot 0.13), so
/// we build without it and register the same clock ourselves (see `Cargo.toml`).
struct Clock;

static CLOCK: Clock = Clock;

impl TimeSource for Clock {
    fn now(&self) -> Option<Duration> {
        static ANCHOR: OnceLock<Instant> = OnceLock::new();
        Some(ANCHOR.get_or_init(Instant::now).elapsed())
    }
}

/// Registers [`CLOCK`] once per process; without a clock the time limit is never enforced.
fn install_clock() {
    static INSTALLED: Once = Once::new();
    // NB: `AlreadySet` means a clock is there, which is all the timer needs.
    INSTALLED.call_once(|| {
        let _ = set_time_source(&CLOCK);
    });
}

/// The policy in force, compiled from `[policy]` files, and what it takes to reload it.
///
/// `Send + Sync`: share it as `Arc<Policy>`; [`Policy::evaluate`] takes `&self` and never
/// waits for a reload.
pub struct Policy {
    config: PolicyConfig,
    /// The version in force. Readers clone the `Arc` and let go of the lock at once.
    current: RwLock<Arc<Compiled>>,
    /// Held for a whole reload (one at a time). Remembers the version last refused, so an
    /// unchanged broken file is not recompiled on every check.
    refused: Mutex<Option<Refused>>,
}

/// One compiled version of the policy ([`Policy::compiled`]): what its modules may read, and
/// its evaluation.
pub struct Compiled {
    /// Modules and data, prepared; each evaluation works on a clone (about 0.2 µs: the modules
    /// and data are shared, not copied).
    engine: regorus::Engine,
    /// The files it was compiled from, as they were just before they were read.
    stamps: Vec<files::Stamp>,
    /// Whether any module may read `input.usage` (see [`reads::may_read_usage`]).
    reads_usage: bool,
    /// The time limit of one evaluation (`[policy] timeout_ms`).
    timeout: Duration,
    /// Evaluations in a row that took less than [`CHEAP`] (saturating at [`CHEAP_STREAK`]).
    cheap_streak: AtomicU32,
}

/// A version that did not compile, and why.
struct Refused {
    stamps: Vec<files::Stamp>,
    why: String,
}

// === impl Policy ===

impl Policy {
    /// Compiles every `.rego` file of `config.paths` and the data document. The error names
    /// the file and, for Rego, the line, column and regorus's message.
    pub fn load(config: &PolicyConfig) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(Self {
            config: config.clone(),
            current: RwLock::new(Arc::new(compile(config)?)),
            refused: Mutex::new(None),
        })
    }

    /// The decision of the policy in force on `input`. Fails closed: an evaluation error, a
    /// result that is not a set, or an evaluation longer than `timeout_ms` is a
    /// [`Decision::Deny`] saying so. CPU-bound for at most about `timeout_ms`.
    pub fn evaluate(&self, input: &PolicyInput) -> Decision {
        self.in_force().evaluate(input)
    }

    /// The version in force now. Gather an input for it and evaluate that input with it (not
    /// with [`Policy::evaluate`]), so a reload in between cannot meet an input gathered for
    /// another version (one that left out `input.usage`, say).
    pub fn compiled(&self) -> Arc<Compiled> {
        self.in_force()
    }

    /// Whether the version in force may read `input.usage`; when it cannot, callers may leave
    /// usage out of the input (see [`Compiled::reads_usage`]).
    pub fn reads_usage(&self) -> bool {
        self.in_force().reads_usage
    }

    /// Recompiles the policy if any of its files changed (modification time or size; a file
    /// added to or removed from a policy directory counts). `Ok(true)`: the new version is in
    /// force; `Ok(false)`: nothing changed; `Err(why)`: the new version does not compile and
    /// the previous one stays in force.
    pub fn reload(&self) -> Result<bool, String> {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let now = files::rego_files(&self.config)
            .and_then(|rego| files::stamps(&rego, self.config.data.as_deref()))
            .map_err(|e| refusal(&e))?;
        if now == self.in_force().stamps {
            *refused = None;
            return Ok(false);
        }
        if let Some(last) = refused.as_ref().filter(|r| r.stamps == now) {
            return Err(last.why.clone());
        }
        match compile(&self.config) {
            Ok(compiled) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(compiled);
                *refused = None;
                Ok(true)
            }
            Err(e) => {
                let why = refusal(&e);
                *refused = Some(Refused {
                    stamps: now,
                    why: why.clone(),
                });
                Err(why)
            }
        }
    }

    /// Checks the files every `reload_secs` and reloads a changed policy: a reload is logged
    /// at info, a refused one at error with the reason (once per broken version, not on every
    /// check). Returns when `shutdown` is cancelled (after the check under way, if any).
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.reload_secs.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate and the policy was just loaded.
        tick.tick().await;
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // NB: reading and compiling files blocks; keep it off the async workers.
            let policy = Arc::clone(&self);
            let outcome = tokio::task::spawn_blocking(move || policy.reload())
                .await
                .unwrap_or_else(|e| Err(format!("the policy reload task failed: {e}")));
            match outcome {
                Ok(true) => {
                    last_error = None;
                    tracing::info!(sources = ?self.sources(), "policy reloaded");
                }
                Ok(false) => last_error = None,
                Err(why) if last_error.as_ref() != Some(&why) => {
                    tracing::error!(
                        error = %why,
                        "policy change refused; the previous policy stays in force"
                    );
                    last_error = Some(why);
                }
                Err(_) => {}
            }
        }
    }

    /// The files of the version in force: its `.rego` files in load order, then the data file.
    pub fn sources(&self) -> Vec<PathBuf> {
        self.in_force()
            .stamps
            .iter()
            .map(|s| s.path().to_owned())
            .collect()
    }

    /// The time limit of one evaluation.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    fn in_force(&self) -> Arc<Compiled> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

// === impl Compiled ===

impl Compiled {
    /// The decision of this version on `input`. Fails closed: an evaluation error, a
    /// result that is not a set, or an evaluation longer than `timeout_ms` is a
    /// [`Decision::Deny`] saying so. CPU-bound for at most about `timeout_ms`.
    pub fn evaluate(&self, input: &PolicyInput) -> Decision {
        let mut engine = self.engine.clone();
        let input = match serde_json::to_value(input) {
            Ok(input) => input,
            Err(e) => return Decision::deny(format!("policy input could not be built: {e}")),
        };
        engine.set_input(regorus::Value::from(input));
        let started = Instant::now();
        let result = engine.eval_rule(DENY_RULE.to_owned());
        let elapsed = started.elapsed();
        self.note(elapsed);
        let limit = self.timeout;
        let timed_out = elapsed > limit
            || result.as_ref().err().is_some_and(|e| {
                matches!(
                    e.downcast_ref::<regorus::LimitError>(),
                    Some(regorus::LimitError::TimeLimitExceeded { .. })
                )
            });
        if timed_out {
            return Decision::deny(format!(
                "policy evaluation took longer than {} ms; the request is denied (make the \
                 policy cheaper, or raise policy.timeout_ms)",
                limit.as_millis()
            ));
        }
        match result {
            Ok(value) => decision_of(&value),
            Err(e) => Decision::deny(format!(
                "policy evaluation failed, so the request is denied: {}",
                tidy(&e)
            )),
        }
    }

    /// Whether its recent evaluations were all cheap (the last [`CHEAP_STREAK`] under 1 ms),
    /// so the next may run on an async worker rather than hop to the blocking pool.
    pub fn is_cheap(&self) -> bool {
        self.cheap_streak.load(Ordering::Relaxed) >= CHEAP_STREAK
    }

    /// Counts an evaluation that took `elapsed` into the streak of cheap ones.
    fn note(&self, elapsed: Duration) {
        if elapsed >= CHEAP {
            self.cheap_streak.store(0, Ordering::Relaxed);
        } else if self.cheap_streak.load(Ordering::Relaxed) < CHEAP_STREAK {
            // NB: racing increments may overshoot a little; `>=` does not mind.
            self.cheap_streak.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether any of its modules may read `input.usage`: conservatively, whether any mentions
    /// the identifier `usage` or uses `input` other than as `input.<field>`. When false the
    /// input may leave usage out: no rule can tell.
    pub fn reads_usage(&self) -> bool {
        self.reads_usage
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("stamps", &self.stamps)
            .field("reads_usage", &self.reads_usage)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("sources", &self.sources())
            .field("timeout_ms", &self.config.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// Compiles the policy `config` names, as its files are now.
fn compile(config: &PolicyConfig) -> anyhow::Result<Compiled> {
    let rego = files::rego_files(config)?;
    // NB: stamped before reading, so a write racing with the read shows as a change next time.
    let stamps = files::stamps(&rego, config.data.as_deref())?;
    install_clock();
    let mut engine = regorus::Engine::new();
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: Duration::from_millis(config.timeout_ms),
        check_interval: TIMER_CHECK_INTERVAL,
    });
    let mut reads_usage = false;
    for path in &rego {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("policy file {}: cannot read it", path.display()))?;
        reads_usage |= reads::may_read_usage(&source);
        let name = path.display().to_string();
        engine.add_policy(name.clone(), source).map_err(|e| {
            // regorus's message starts with `<file>:<line>:<col>` when it knows where.
            let why = tidy(&e);
            if why.starts_with(&format!("{name}:")) {
                anyhow::anyhow!("policy file {why}")
            } else {
                anyhow::anyhow!("policy file {name}: {why}")
            }
        })?;
    }
    if let Some(path) = &config.data {
        engine
            .add_data_json(&files::read_data(path)?)
            .map_err(|e| anyhow::anyhow!("policy data {}: {}", path.display(), tidy(&e)))?;
    }
    // Compiling for the decision rule checks the rules fit together and that it exists.
    engine
        .compile_with_entrypoint(&DENY_RULE.into())
        .map_err(|e| {
            anyhow::anyhow!(
                "policy {}: {} (the decision is the set `{DENY_RULE}`: write `package vcm` and \
             `deny contains msg if {{ … }}` rules)",
                list(&rego),
                tidy(&e)
            )
        })?;
    Ok(Compiled {
        engine,
        stamps,
        reads_usage,
        timeout: Duration::from_millis(config.timeout_ms),
        cheap_streak: AtomicU32::new(0),
    })
}

/// The decision a value of `data.vcm.deny` means.
fn decision_of(value: &regorus::Value) -> Decision {
    match value {
        regorus::Value::Undefined => Decision::Allow,
        regorus::Value::Set(set) if set.is_empty() => Decision::Allow,
        regorus::Value::Set(set) => Decision::Deny(set.iter().map(message).collect()),
        other => Decision::deny(format!(
            "policy error, so the request is denied: {DENY_RULE} must be a set of messages \
             (`deny contains msg if {{ … }}`), not {}",
            message(other)
        )),
    }
}

/// A denial message: a string as it is, anything else as JSON.
fn message(value: &regorus::Value) -> String {
    match value {
        regorus::Value::String(s) => s.to_string(),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// regorus's multi-line error (`--> file:line:col`, the source line, a caret, `error: what`)
/// as one line: `file:line:col: what`. Anything else is kept, trimmed.
fn tidy(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let at = text.lines().find_map(|l| l.trim().strip_prefix("--> "));
    let what = text.lines().find_map(|l| l.trim().strip_prefix("error: "));
    match (at, what) {
        (Some(at), Some(what)) => format!("{at}: {what}"),
        _ => text.trim().to_owned(),
    }
}

fn refusal(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
