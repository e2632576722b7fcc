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
//! comments. The plan comes first when the number of checks is known up
//! front ([`Tap::plan`]), else last. Every line is flushed as it is
//! written, so a run cut short by a timeout shows how far it got. Output
//! errors are ignored: a test has nowhere else to report them.

use std::fmt::Display;
use std::io::{self, Write};

/// Text as one line of TAP: no newline, and no ` # ` that would start a
/// directive.
pub fn one_line(s: &str) -> String {
    s.replace('\n', "; ").replace(" # ", " - ")
}

/// A TAP writer.
pub struct Tap<W: Write = io::Stdout> {
    out: W,
    planned: bool,
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
    fn bail_out_is_one_line() {
        let out = Shared::default();
        let mut tap = Tap::new(out.clone());
        tap.bail_out("no\nmore");
        assert_eq!(out.text(), "TAP version 14\nBail out! no; more\n");
    }
}
