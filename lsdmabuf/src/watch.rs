// SPDX-License-Identifier: GPL-2.0
//! `--watch`: a walk every few seconds, and what changed since the last.
//!
//! The first tick prints the view as lsdmabuf does without `--watch`; each
//! tick after it prints a line that says what changed, the buffers new and
//! gone, and the processes whose holdings grew or shrank, with how much
//! ([`crate::human::render_changes`]); with `--json`, one JSON document per
//! line and tick. SIGINT and SIGTERM are blocked while it runs and taken
//! between ticks only ([`Signals::wait`]), so that Ctrl-C ends it after a
//! whole tick, with status 0.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use nix::sys::signal::{SigSet, Signal};
use serde::Serialize;

use crate::human::{self, Layout};
use crate::model::{Changes, Filter, Report};
use crate::scan::{self, Options};

/// The shortest interval `--watch` takes.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The longest: a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86400);

/// `--watch SECONDS`: a number of seconds, fractions allowed.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds: give one like 2 or 0.5"))?;
    if !secs.is_finite() {
        return Err(format!(
            "`{s}` is not a number of seconds: give a finite one like 2 or 0.5"
        ));
    }
    if secs < MIN_INTERVAL.as_secs_f64() {
        return Err(format!(
            "{s} s is too short: the interval is at least {} s",
            MIN_INTERVAL.as_secs_f64()
        ));
    }
    if secs > MAX_INTERVAL.as_secs_f64() {
        return Err(format!(
            "{s} s is too long: the interval is at most {} s (a day)",
            MAX_INTERVAL.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The signals that end a watch, blocked so that they wait for the end of a
/// tick.
pub struct Signals(SigSet);

impl Signals {
    /// Blocks SIGINT and SIGTERM in this thread and in every thread it
    /// starts from now on (the walk's).
    pub fn block() -> Result<Signals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block()
            .map_err(|e| anyhow::anyhow!("blocking SIGINT and SIGTERM: {e}"))?;
        Ok(Signals(set))
    }

    /// Waits `interval`; `Some(signal)` when one of the signals came
    /// (during the wait or before it), `None` when the time ran out.
    pub fn wait(&self, interval: Duration) -> Option<Signal> {
        let ts = libc::timespec {
            tv_sec: interval.as_secs() as libc::time_t,
            tv_nsec: interval.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set and the timespec are valid for the call, the info
        // pointer may be null, and sigtimedwait() keeps none of them.
        let n = unsafe { libc::sigtimedwait(self.0.as_ref(), std::ptr::null_mut(), &ts) };
        // -1 with EAGAIN: the time ran out; with EINTR: another signal
        // (SIGCONT after a stop) cut the wait short, which only makes the
        // next tick come earlier.
        (n > 0).then(|| Signal::try_from(n).ok()).flatten()
    }
}

/// The state of a watch: what it walks, how it prints, the last report.
pub struct Watcher {
    pub opts: Options,
    pub filter: Filter,
    pub layout: Layout,
    pub json: bool,
    last: Option<Report>,
    ticks: u64,
}

/// A JSON tick.
#[derive(Serialize)]
struct JsonTick<'a> {
    tick: u64,
    /// Seconds since the epoch.
    time: u64,
    /// The first tick: everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a Report>,
    /// The ticks after it: what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a Changes>,
}

impl Watcher {
    pub fn new(opts: Options, filter: Filter, layout: Layout, json: bool) -> Watcher {
        Watcher {
            opts,
            filter,
            layout,
            json,
            last: None,
            ticks: 0,
        }
    }

    /// The report of the last tick.
    pub fn last(&self) -> Option<&Report> {
        self.last.as_ref()
    }

    /// Walks once and returns what to print: the whole view the first time,
    /// what changed after.
    pub fn tick(&mut self, now: SystemTime) -> Result<String> {
        let (_, analysis) = scan::analyze(&self.opts)?;
        let mut report = analysis.report(&self.filter);
        if let Some((key, reverse)) = self.layout.sort {
            report.sort(key, reverse);
        }
        let text = self.text(&report, now)?;
        self.last = Some(report);
        self.ticks += 1;
        Ok(text)
    }

    fn text(&self, report: &Report, now: SystemTime) -> Result<String> {
        let changes = self
            .last
            .as_ref()
            .map(|last| Changes::between(last, report));
        if self.json {
            let tick = JsonTick {
                tick: self.ticks,
                time: now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                report: changes.is_none().then_some(report),
                changes: changes.as_ref(),
            };
            let mut line = serde_json::to_string(&tick)?;
            line.push('\n');
            return Ok(line);
        }
        Ok(match changes {
            None => human::render(report, &self.layout),
            Some(c) => {
                let columns = match self.layout.view {
                    crate::model::View::Buffer => self.layout.columns.clone(),
                    _ => human::default_columns(crate::model::View::Buffer),
                };
                human::render_changes(&c, &human::clock(now), &columns, self.layout.sizes)
            }
        })
    }
}

/// Runs a watch until SIGINT or SIGTERM: a tick every `interval`, each
/// written whole. `first` is called with the first report (for the notes).
/// A reader that goes away (`lsdmabuf --watch 1 | head`) ends it too.
pub fn run(
    w: &mut Watcher,
    interval: Duration,
    out: &mut dyn Write,
    first: &mut dyn FnMut(&Report),
) -> Result<()> {
    let signals = Signals::block()?;
    loop {
        let text = w.tick(SystemTime::now())?;
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(anyhow::Error::from(e).context("writing to stdout")),
        }
        if w.ticks == 1 {
            if let Some(r) = &w.last {
                first(r);
            }
        }
        if signals.wait(interval).is_some() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval(" 0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "0.01", "nan", "inf", "1e9", "two", ""] {
            let e = parse_interval(bad).unwrap_err();
            assert!(e.contains("seconds") || e.contains(" s "), "{bad}: {e}");
        }
        // Not a number is not too short, nor too long.
        for bad in ["inf", "-inf", "nan", "NaN", "infinity"] {
            let e = parse_interval(bad).unwrap_err();
            assert!(
                e.contains("not a number of seconds") && !e.contains("too"),
                "{bad}: {e}"
            );
        }
    }
}
