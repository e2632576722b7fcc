// SPDX-License-Identifier: GPL-2.0
//! TAP version 14 output, as the tests that run in the VM print it:
//!
//! ```text
//! TAP version 14
//! ok 1 - udmabuf.st_size: 1000 buffers
//! not ok 2 - stress.baseline: slab cache filp holds 12 more objects
//! # the rest of the message, one comment line each
//! 1..2
//! # failed: stress.baseline
//! 1 passed, 1 failed
//! ```
//!
//! A result's name is one word (`ci/boot-report` names a failed check by
//! it); its message follows on the same line, further lines of it as
//! comments. The plan comes first when the checks are known up front
//! ([`Tap::plan_checks`], which also holds the results to the names
//! planned, in order; [`Tap::plan`] for a bare number), else last. Every
//! line is flushed as it is
//! written, so a run cut short by a timeout shows how far it got. Output
//! errors are ignored: a test has nowhere else to report them.

use std::fmt::Display;
use std::io::{self, Write};

/// Text as one line of TAP: no newline, and no ` # ` that would start a
/// directive.
pub fn one_line(s: &str) -> String {
    s.replace('\n', "; ").replace(" # ", " - ")
}

/// The text of `--list-checks`: one line per check, its columns (the name
/// first, the description last) padded to a common width and two spaces
/// apart, so that `awk '{ print $1 }'` gives the names and `wc -l` their
/// number, the plan of the run that lists them.
pub fn listing<R: AsRef<[S]>, S: AsRef<str>>(rows: &[R]) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.as_ref().get(c).map(|s| s.as_ref().len()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut text = String::new();
    for r in rows {
        let r = r.as_ref();
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                line += &format!("{:w$}  ", cell.as_ref(), w = widths[c]);
            } else {
                line += cell.as_ref();
            }
        }
        text += line.trim_end();
        text.push('\n');
    }
    text
}

/// Writes `text` to standard output; a reader that stopped reading (`|
/// head`) is no error.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// A TAP writer.
pub struct Tap<W: Write = io::Stdout> {
    out: W,
    planned: bool,
    /// The checks [`Tap::plan_checks`] announced, in order.
    expected: Option<Vec<String>>,
    passed: usize,
    failed: Vec<String>,
}

impl Tap<io::Stdout> {
    /// A writer on standard output; writes the version line.
    pub fn stdout() -> Self {
        Tap::new(io::stdout())
    }
}

impl<W: Write> Tap<W> {
    /// A writer on `out`; writes the version line.
    pub fn new(out: W) -> Self {
        let mut tap = Tap {
            out,
            planned: false,
            expected: None,
            passed: 0,
            failed: Vec::new(),
        };
        tap.line("TAP version 14");
        tap
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Announces `n` checks; before the first result only.
    pub fn plan(&mut self, n: usize) {
        debug_assert_eq!(self.count(), 0, "the plan comes before the results");
        self.planned = true;
        self.line(&format!("1..{n}"));
    }

    /// Announces the checks `names`, before the first result: the plan is
    /// their number, and each result must be the next of them. A result by
    /// another name fails, saying which was planned there; a planned check
    /// with no result by [`Tap::finish`] fails as not run. A tool whose
    /// `--list-checks` prints the same names thus reports exactly what it
    /// lists.
    pub fn plan_checks<S: Into<String>>(&mut self, names: impl IntoIterator<Item = S>) {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        self.plan(names.len());
        self.expected = Some(names);
    }

    /// How many results were written.
    pub fn count(&self) -> usize {
        self.passed + self.failed.len()
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// The names of the checks that failed, in order.
    pub fn failed(&self) -> &[String] {
        &self.failed
    }

    /// Writes one result: `ok N - name: message`, and the message's further
    /// lines as comments.
    pub fn result(&mut self, name: &str, ok: bool, message: &str) {
        let unplanned = self
            .expected
            .as_ref()
            .and_then(|e| match e.get(self.count()) {
                Some(want) if want == name => None,
                Some(want) => Some(format!(
                    "a result for {name}, where the plan has {want} (check {})",
                    self.count() + 1
                )),
                None => Some(format!(
                    "a result for {name} beyond the {} checks planned",
                    e.len()
                )),
            });
        let mut message = message.to_string();
        let ok = ok && unplanned.is_none();
        if let Some(u) = unplanned {
            message = format!("{u}\n{message}");
        }
        let message = message.as_str();
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(name.to_string());
        }
        let n = self.count();
        let status = if ok { "ok" } else { "not ok" };
        let mut lines = message.lines().filter(|l| !l.trim().is_empty());
        match lines.next() {
            Some(first) => self.line(&format!("{status} {n} - {name}: {}", one_line(first))),
            None => self.line(&format!("{status} {n} - {name}")),
        }
        for l in lines {
            self.line(&format!("# {l}"));
        }
    }

    /// Writes the result of a check that returned `Ok(message)` or an error
    /// (an `anyhow::Error` with its causes).
    pub fn check<E: Display>(&mut self, name: &str, result: Result<String, E>) {
        match result {
            Ok(message) => self.result(name, true, &message),
            Err(e) => self.result(name, false, &format!("{e:#}")),
        }
    }

    /// Writes a passed check.
    pub fn pass(&mut self, name: &str, message: &str) {
        self.result(name, true, message);
    }

    /// Writes `text` as comment lines.
    pub fn comment(&mut self, text: &str) {
        for l in text.lines() {
            self.line(&format!("# {l}"));
        }
    }

    /// Says the run cannot go on (`Bail out! reason`).
    pub fn bail_out(&mut self, reason: &str) {
        self.line(&format!("Bail out! {}", one_line(reason)));
    }

    /// Writes the plan if it was not written first, the names of the failed
    /// checks and `N passed, N failed`; true when every check passed.
    pub fn finish(mut self) -> bool {
        let missing: Vec<String> = self
            .expected
            .as_ref()
            .map(|e| e.iter().skip(self.count()).cloned().collect())
            .unwrap_or_default();
        for name in missing {
            self.result(
                &name,
                false,
                "not run: the run ended before this planned check",
            );
        }
        if !self.planned {
            self.line(&format!("1..{}", self.count()));
        }
        if !self.failed.is_empty() {
            let names = self.failed.join(",");
            self.line(&format!("# failed: {names}"));
        }
        let tally = format!("{} passed, {} failed", self.passed, self.failed.len());
        self.line(&tally);
        self.failed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer whose text the test reads after `finish()` consumed it.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    #[test]
    fn results_then_plan_and_tally() {
        let out = Shared::default();
        let mut tap = Tap::new(out.clone());
        tap.pass("a.one", "fine # really");
        tap.check("a.two", Err("expected 1\nsaw 2\n"));
        tap.comment("note 1\nnote 2");
        tap.result("a.three", true, "");
        assert_eq!(tap.passed(), 2);
        assert_eq!(tap.failed(), ["a.two"]);
        assert!(!tap.finish());
        assert_eq!(
            out.text(),
            "TAP version 14\nok 1 - a.one: fine - really\nnot ok 2 - a.two: expected 1\n# saw 2\n\
             # note 1\n# note 2\nok 3 - a.three\n1..3\n# failed: a.two\n2 passed, 1 failed\n"
        );
    }

    #[test]
    fn plan_first_and_everything_passed() {
        let out = Shared::default();
        let mut tap = Tap::new(out.clone());
        tap.plan(1);
        tap.check::<String>("x", Ok(3.to_string()));
        assert!(tap.finish());
        assert_eq!(
            out.text(),
            "TAP version 14\n1..1\nok 1 - x: 3\n1 passed, 0 failed\n"
        );
    }

    #[test]
    fn planned_checks_are_held_to_their_names() {
        let out = Shared::default();
        let mut tap = Tap::new(out.clone());
        tap.plan_checks(["a.one", "a.two", "a.three"]);
        tap.pass("a.one", "fine");
        tap.pass("a.three", "out of order");
        assert_eq!(tap.failed(), ["a.three"]);
        assert!(!tap.finish());
        assert_eq!(
            out.text(),
            "TAP version 14\n1..3\nok 1 - a.one: fine\n\
             not ok 2 - a.three: a result for a.three, where the plan has a.two (check 2)\n\
             # out of order\n\
             not ok 3 - a.three: not run: the run ended before this planned check\n\
             # failed: a.three,a.three\n1 passed, 2 failed\n"
        );
    }

    #[test]
    fn every_planned_check_reported_passes() {
        let out = Shared::default();
        let mut tap = Tap::new(out.clone());
        tap.plan_checks(vec!["x".to_string()]);
        tap.pass("x", "");
        assert!(tap.finish());
        let mut tap = Tap::new(Shared::default());
        tap.plan_checks(["x"]);
        tap.pass("x", "");
        tap.pass("y", "one too many");
        assert_eq!(tap.failed(), ["y"]);
    }

    #[test]
    fn listing_aligns_every_column_but_the_last() {
        let text = listing(&[
            [
                "fail_nth.udmabuf.export",
                "fail-nth",
                "export fails cleanly",
            ],
            ["stress.operations", "run", "no error"],
        ]);
        assert_eq!(
            text,
            "fail_nth.udmabuf.export  fail-nth  export fails cleanly\n\
             stress.operations        run       no error\n"
        );
        assert_eq!(listing(&[["a", ""]]), "a\n");
        assert_eq!(listing::<[&str; 2], &str>(&[]), "");
    }

    #[test]
    fn bail_out_is_one_line() {
        let out = Shared::default();
        let mut tap = Tap::new(out.clone());
        tap.bail_out("no\nmore");
        assert_eq!(out.text(), "TAP version 14\nBail out! no; more\n");
    }
}
