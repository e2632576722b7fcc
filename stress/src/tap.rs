// SPDX-License-Identifier: GPL-2.0
//! TAP output: one `ok N - name` or `not ok N - name` per check, with its
//! diagnostics indented, then `N passed, N failed`.

pub struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    pub fn new() -> Tap {
        println!("TAP version 14");
        Tap { n: 0, failed: 0 }
    }

    /// Reports one check: `Ok(note)` passes, `Err(why)` fails.
    pub fn check(&mut self, name: &str, result: Result<String, String>) {
        self.n += 1;
        let (status, text) = match result {
            Ok(note) => ("ok", note),
            Err(why) => {
                self.failed += 1;
                ("not ok", why)
            }
        };
        println!("{status} {} - {name}", self.n);
        for line in text.lines().filter(|l| !l.is_empty()) {
            println!("  # {line}");
        }
    }

    /// Prints the plan and the tally; true when every check passed.
    pub fn finish(self) -> bool {
        println!("1..{}", self.n);
        println!("{} passed, {} failed", self.n - self.failed, self.failed);
        self.failed == 0
    }
}
