//! The I/O half of health checks: one child process per `vrrp_script` run, started, reaped
//! and killed from the daemon's poll loop as [`crate::track::Runner`] says, its exits counted
//! by [`crate::track::Check`]. Nothing here waits: `try_wait` after SIGCHLD or a deadline.

use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::config::{Config, ScriptConfig};
use crate::fsm::Time;
use crate::status::ScriptStatus;
use crate::track::{Check, Outcome, Runner, Step};

/// One tracked script and its current child, if any.
pub struct Health {
    pub cfg: ScriptConfig,
    pub check: Check,
    runner: Runner,
    child: Option<Child>,
    /// `user USERNAME [GROUPNAME]` resolved once at start.
    ids: Option<(u32, u32)>,
    last: Option<(Time, Outcome, Duration)>,
    runs: u64,
    failures: u64,
    timeouts: u64,
    skipped: u64,
}

/// A health entry per configured script, `None` for those nothing tracks (keepalived does
/// not run them either).
pub fn from_config(cfg: &Config, now: Time) -> Result<Vec<Option<Health>>> {
    let used = |name: &str| {
        cfg.instances
            .iter()
            .flat_map(|i| &i.track_scripts)
            .chain(cfg.sync_groups.iter().flat_map(|g| &g.track_scripts))
            .any(|t| t.name == name)
    };
    cfg.scripts
        .iter()
        .map(|s| used(&s.name).then(|| Health::new(s, now)).transpose())
        .collect()
}

/// Reload: keep each check whose configuration did not change (its counter, schedule and
/// running child carry over), start the new or changed ones, kill the dropped ones.
pub fn reload(old: Vec<Option<Health>>, cfg: &Config, now: Time) -> Result<Vec<Option<Health>>> {
    let mut old: Vec<Health> = old.into_iter().flatten().collect();
    let fresh = from_config(cfg, now)?;
    let out = fresh
        .into_iter()
        .map(|h| {
            let h = h?;
            match old.iter().position(|o| same_script(&o.cfg, &h.cfg)) {
                Some(k) => Some(old.swap_remove(k)),
                None => Some(h),
            }
        })
        .collect();
    for mut o in old {
        o.kill();
    }
    Ok(out)
}

/// The same check, wherever it moved in the file.
fn same_script(a: &ScriptConfig, b: &ScriptConfig) -> bool {
    ScriptConfig {
        line: 0,
        ..a.clone()
    } == ScriptConfig {
        line: 0,
        ..b.clone()
    }
}

impl Health {
    fn new(c: &ScriptConfig, now: Time) -> Result<Health> {
        let ids = match &c.user {
            Some((u, g)) => Some(user_ids(u, g.as_deref())?),
            None => None,
        };
        Ok(Health {
            cfg: c.clone(),
            check: Check::new(c),
            runner: Runner::new(c, now),
            child: None,
            ids,
            last: None,
            runs: 0,
            failures: 0,
            timeouts: 0,
            skipped: 0,
        })
    }

    pub fn deadline(&self) -> Time {
        self.runner.deadline()
    }

    /// Reap a finished run, then do what is due; `Some(good)` when the tracked state changed.
    pub fn service(&mut self, now: Time) -> Option<bool> {
        let mut changed = self.reap(now);
        for step in self.runner.poll(now) {
            match step {
                Step::Start => changed = changed.or(self.start(now)),
                Step::Skip => {
                    self.skipped += 1;
                    log(&format!(
                        "Track script {} is still running: skipping this run",
                        self.cfg.name
                    ));
                }
                Step::Term => self.signal(libc::SIGTERM),
                Step::Kill => self.signal(libc::SIGKILL),
            }
        }
        changed
    }

    /// Count the exit of the current child, if it has exited.
    fn reap(&mut self, now: Time) -> Option<bool> {
        let st = self.child.as_mut()?.try_wait();
        let st = match st {
            Ok(Some(st)) => st,
            Ok(None) => return None,
            Err(e) => {
                log(&format!("script {}: wait failed: {e}", self.cfg.name));
                self.child = None;
                self.runner.start_failed();
                return None;
            }
        };
        self.child = None;
        let (outcome, ran) = self.runner.exited(now, st.code(), st.signal());
        self.finish(now, outcome, ran)
    }

    /// Record one result and log a change of the tracked state as keepalived words it.
    fn finish(&mut self, now: Time, outcome: Outcome, ran: Duration) -> Option<bool> {
        match outcome {
            Outcome::Success => {}
            Outcome::TimedOut => self.timeouts += 1,
            Outcome::Failed(_) => self.failures += 1,
        }
        let changed = self.check.record(outcome.success());
        if let Some(ok) = changed {
            let how = match (&outcome, ok) {
                (_, true) => "succeeded".to_string(),
                (Outcome::TimedOut, _) => "timed_out".to_string(),
                (o, _) => format!("failed ({})", o.describe()),
            };
            log(&format!("VRRP_Script({}) {how}", self.cfg.name));
        }
        self.last = Some((now, outcome, ran));
        changed
    }

    /// Fork and exec the script (no shell), in its own process group so a timeout kills
    /// whatever it started too.
    fn start(&mut self, now: Time) -> Option<bool> {
        let argv = &self.cfg.argv;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
        // SAFETY: both calls are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                crate::sys::unblock_signals();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.runs += 1;
        match cmd.spawn() {
            Ok(c) => {
                self.child = Some(c);
                None
            }
            Err(e) => {
                self.runner.start_failed();
                let o = Outcome::Failed(format!("cannot start: {e}"));
                self.finish(now, o, Duration::ZERO)
            }
        }
    }

    /// Signal the running child's process group.
    fn signal(&mut self, sig: i32) {
        if let Some(c) = &self.child {
            let pgid = c.id() as i32;
            log(&format!(
                "Track script {} timed out: sending signal {sig} to its process group {pgid}",
                self.cfg.name
            ));
            // SAFETY: signalling the process group of our own child.
            unsafe { libc::kill(-pgid, sig) };
        }
    }

    /// Shutdown: kill a running check and its group, without waiting for it.
    pub fn kill(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
        self.child = None;
    }

    pub fn status(&self, now: Time) -> ScriptStatus {
        let state = match self.check.ok() {
            None => "INIT",
            Some(true) => "GOOD",
            Some(false) => "BAD",
        };
        ScriptStatus {
            name: self.cfg.name.clone(),
            command: self.cfg.argv.join(" "),
            state: state.into(),
            running: self.child.is_some(),
            last_result: self.last.as_ref().map(|(_, o, _)| o.describe()),
            last_run_ago_s: self.last.as_ref().map(|(t, _, _)| (now - *t).as_secs_f64()),
            last_duration_ms: self.last.as_ref().map(|(_, _, d)| d.as_millis() as u64),
            runs: self.runs,
            failures: self.failures,
            timeouts: self.timeouts,
            skipped: self.skipped,
        }
    }
}

fn log(msg: &str) {
    crate::daemon::log(msg)
}

/// uid and gid of `user` (its primary group unless `group` is given).
fn user_ids(user: &str, group: Option<&str>) -> Result<(u32, u32)> {
    let cu = std::ffi::CString::new(user)?;
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once, single thread.
    let pw = unsafe { libc::getpwnam(cu.as_ptr()) };
    if pw.is_null() {
        bail!("vrrp_script user '{user}' does not exist");
    }
    // SAFETY: pw is non-null and points to a valid passwd.
    let (uid, mut gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    if let Some(g) = group {
        let cg = std::ffi::CString::new(g)?;
        // SAFETY: as getpwnam.
        let gr = unsafe { libc::getgrnam(cg.as_ptr()) };
        if gr.is_null() {
            bail!("vrrp_script group '{g}' does not exist");
        }
        // SAFETY: gr is non-null.
        gid = unsafe { (*gr).gr_gid };
    }
    Ok((uid, gid))
}
