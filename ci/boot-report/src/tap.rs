// SPDX-License-Identifier: GPL-2.0
//! The commands' output: vm-init's sections, and the TAP stream of each.
//!
//! vm-init frames each command's output on the guest's output port with two
//! lines of its own:
//!
//! ```text
//! # vm-init: command 1: validator --count 1000
//! TAP version 14
//! 1..65
//! ok 1 - udmabuf.st_ino_nonzero: 1000 buffers, st_ino 1 to 1000
//! ...
//! # vm-init: command 1 exited 0
//! ```
//!
//! [`sections`] cuts the output there, and [`Tap::parse`] reads the TAP
//! stream of one section: its version line, its plan (`1..N`, before the
//! first result or after the last), its top-level `ok`/`not ok` results with
//! their `SKIP` and `TODO` directives, and a `Bail out!`.

use serde::Serialize;

/// What starts each of vm-init's lines on the output port.
const MARK: &str = "# vm-init: command ";

/// A `SKIP` or `TODO` directive: the check did not run, or is not meant to
/// pass yet. Either way it is no pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// `SKIP` or `TODO`.
    pub directive: &'static str,
    /// What follows the directive, as the tool gave it.
    pub reason: String,
}

/// One top-level `ok`/`not ok` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TapResult {
    /// The test number, when the line has one.
    pub number: Option<usize>,
    /// The check's name (see [`check_name`]).
    pub name: String,
    /// Everything after the number, without the directive.
    pub description: String,
    pub ok: bool,
    pub skip: Option<Skip>,
    /// The line as the tool printed it, for quoting.
    #[serde(skip)]
    pub line: String,
}

impl TapResult {
    /// An `ok` without a directive.
    pub fn passed(&self) -> bool {
        self.ok && self.skip.is_none()
    }

    /// A `not ok` without a directive.
    pub fn failed(&self) -> bool {
        !self.ok && self.skip.is_none()
    }
}

/// `rest` when `line` is `word`, or `word` and whitespace and `rest`.
fn strip_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        Some(rest)
    } else if rest.starts_with([' ', '\t']) {
        Some(rest.trim_start())
    } else {
        None
    }
}

/// Splits `text` at its directive: a `#` at its start or after whitespace,
/// followed by `SKIP` or `TODO` in any case (`# skip`, `# Skipped: ...`).
fn split_directive(text: &str) -> (&str, Option<Skip>) {
    for (i, _) in text.match_indices('#') {
        let before = &text[..i];
        if !(before.is_empty() || before.ends_with([' ', '\t'])) {
            continue;
        }
        let after = text[i + 1..].trim_start();
        let word_end = after.find([' ', '\t', ':']).unwrap_or(after.len());
        let word = after[..word_end].to_ascii_uppercase();
        let directive = if word.starts_with("SKIP") {
            "SKIP"
        } else if word.starts_with("TODO") {
            "TODO"
        } else {
            continue;
        };
        let reason = after[word_end..].trim_start_matches(':').trim().to_string();
        return (before.trim_end(), Some(Skip { directive, reason }));
    }
    (text.trim_end(), None)
}

/// Parses a TAP result line, `ok 3 - name: text # SKIP reason`; the number,
/// the description and the directive may each be missing.
pub fn parse_result(line: &str) -> Option<TapResult> {
    let (ok, rest) = if let Some(r) = strip_word(line, "not ok") {
        (false, r)
    } else if let Some(r) = strip_word(line, "ok") {
        (true, r)
    } else {
        return None;
    };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, rest) = match rest[..digits].parse() {
        Ok(n) if rest[digits..].is_empty() || rest[digits..].starts_with([' ', '\t']) => {
            (Some(n), rest[digits..].trim_start())
        }
        _ => (None, rest),
    };
    let (description, skip) = split_directive(rest);
    Some(TapResult {
        number,
        name: check_name(description).to_string(),
        description: description.to_string(),
        ok,
        skip,
        line: line.to_string(),
    })
}

/// The name of a check, from a result's description: its first word,
/// without a leading `- ` and a trailing `:`. So the validator's
/// `ok 3 - udmabuf.st_size: 1000 buffers` names `udmabuf.st_size`, and the
/// kselftest harness's `ok 3 dmabuf.udmabuf.st_size` names
/// `dmabuf.udmabuf.st_size`.
pub fn check_name(description: &str) -> &str {
    let word = description
        .strip_prefix("- ")
        .unwrap_or(description)
        .split_whitespace()
        .next()
        .unwrap_or("");
    word.strip_suffix(':').unwrap_or(word)
}

/// A plan line, `1..N`, maybe with a directive (`1..0 # SKIP no device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// N: the results the stream promises.
    pub count: usize,
    /// How many results came before it: 0 for a plan at the start.
    pub after_results: usize,
    /// A `SKIP` directive: the tool ran none of its checks.
    pub skip: Option<Skip>,
    #[serde(skip)]
    pub line: String,
}

fn parse_plan(line: &str, after_results: usize) -> Option<Plan> {
    let rest = line.strip_prefix("1..")?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let count = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some(Plan {
        count,
        after_results,
        skip: split_directive(rest).1,
        line: line.to_string(),
    })
}

/// The TAP stream of one command: its top-level lines only; indented lines
/// (subtests, diagnostics) and comments do not count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tap {
    /// The `TAP version N` (or `KTAP version N`) line.
    pub version: Option<String>,
    /// Every plan line; a whole stream has exactly one.
    pub plans: Vec<Plan>,
    pub results: Vec<TapResult>,
    /// The first `Bail out!` line.
    pub bail_out: Option<String>,
}

impl Tap {
    /// Reads the TAP of `lines`, one command's output.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Tap {
        let mut tap = Tap::default();
        for line in lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim_start().starts_with("Bail out!") {
                tap.bail_out.get_or_insert_with(|| line.trim().to_string());
            } else if line.starts_with([' ', '\t']) {
                continue;
            } else if line.starts_with("TAP version ") || line.starts_with("KTAP version ") {
                tap.version.get_or_insert_with(|| line.to_string());
            } else if let Some(plan) = parse_plan(line, tap.results.len()) {
                tap.plans.push(plan);
            } else if let Some(result) = parse_result(line) {
                tap.results.push(result);
            }
        }
        tap
    }

    /// Whether the output holds TAP at all: a version line, a plan, a
    /// result or a `Bail out!`.
    pub fn is_tap(&self) -> bool {
        self.version.is_some()
            || !self.plans.is_empty()
            || !self.results.is_empty()
            || self.bail_out.is_some()
    }

    /// The plan's N, when the stream has exactly one plan.
    pub fn planned(&self) -> Option<usize> {
        match self.plans.as_slice() {
            [plan] => Some(plan.count),
            _ => None,
        }
    }

    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.failed()).count()
    }

    pub fn skipped(&self) -> usize {
        self.results.iter().filter(|r| r.skip.is_some()).count()
    }

    /// Why the stream is not whole, if it is not: a `Bail out!`; results
    /// without a plan; more than one plan; results after a closing plan;
    /// fewer or more results than planned; a result numbered out of order.
    /// Skips and failed checks are not the stream's problem.
    pub fn problems(&self) -> Vec<String> {
        if let Some(b) = &self.bail_out {
            return vec![format!("bailed out: `{b}`")];
        }
        let mut problems = Vec::new();
        let n = self.results.len();
        let last = match self.results.last() {
            Some(r) => format!(" (the last: `{}`)", r.line),
            None => String::new(),
        };
        match self.plans.as_slice() {
            [] if n > 0 => problems.push(format!(
                "{n} results but no plan line `1..N`: the stream was cut short{last}"
            )),
            [] => problems.push("a `TAP version` line but no plan and no result".to_string()),
            [plan] => {
                if plan.after_results != 0 && plan.after_results != n {
                    problems.push(format!(
                        "{} results after the closing plan `{}`",
                        n - plan.after_results,
                        plan.line
                    ));
                }
                if plan.count > n {
                    problems.push(format!(
                        "planned {} checks but reported {n}: the run stopped early{last}",
                        plan.count
                    ));
                } else if plan.count < n {
                    problems.push(format!("planned {} checks but reported {n}", plan.count));
                }
            }
            plans => problems.push(format!(
                "{} plan lines ({}): a stream has one",
                plans.len(),
                plans
                    .iter()
                    .map(|p| format!("`{}`", p.line))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        let misnumbered = self
            .results
            .iter()
            .enumerate()
            .find(|(i, r)| r.number.is_some_and(|num| num != i + 1));
        if let Some((i, r)) = misnumbered {
            problems.push(format!(
                "result {} is numbered out of order: `{}`",
                i + 1,
                r.line
            ));
        }
        problems
    }
}

/// One command's part of the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// N of vm-init's `# vm-init: command N: ARGV`; `None` for what the
    /// output holds before the first such line.
    pub command: Option<usize>,
    /// The command line, split at spaces.
    pub argv: Vec<String>,
    /// Which tool printed it (see [`tool_name`]).
    pub tool: String,
    /// S of `# vm-init: command N exited S` (`0`, `1`, `signal 9`);
    /// `None` when that line is missing.
    pub exited: Option<String>,
    pub tap: Tap,
    /// Lines vm-init printed about the command there (`vm-init: cannot run
    /// /bin/x: ENOENT`).
    pub vm_init_lines: Vec<String>,
}

impl Section {
    /// How messages name the section: `validator (command 1)`.
    pub fn label(&self) -> String {
        match self.command {
            Some(n) => format!("{} (command {n})", self.tool),
            None => "the output before vm-init's first command line".to_string(),
        }
    }
}

/// The tool a command line runs, as `--plan` and `--allow-skip` name it:
/// the basename of argv\[0\], and argv\[1\] after a space when that is a
/// subcommand, a word (a letter, then letters, digits, `-` or `_`). So
/// `validator --count 100` is `validator`, `/bin/dmabuf-stress fail-nth
/// --exporter heap` is `dmabuf-stress fail-nth`, `dmabuf-stat -v udmabuf`
/// is `dmabuf-stat` and `cat /proc/meminfo` is `cat`.
pub fn tool_name(argv: &[String]) -> String {
    let Some(program) = argv.first() else {
        return String::new();
    };
    let base = program.rsplit('/').next().unwrap_or(program);
    let subcommand = argv.get(1).filter(|a| {
        a.starts_with(|c: char| c.is_ascii_alphabetic())
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    match subcommand {
        Some(sub) => format!("{base} {sub}"),
        None => base.to_string(),
    }
}

/// One of vm-init's lines on the output port.
enum Mark<'a> {
    /// `# vm-init: command N: ARGV`
    Start(usize, &'a str),
    /// `# vm-init: command N exited S`
    End(usize, &'a str),
}

fn parse_mark(text: &str) -> Option<Mark<'_>> {
    let rest = text.strip_prefix(MARK)?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if let Some(argv) = rest.strip_prefix(": ") {
        Some(Mark::Start(n, argv.trim()))
    } else {
        rest.strip_prefix(" exited ")
            .map(|status| Mark::End(n, status.trim()))
    }
}

/// Cuts the commands' output into one section per command, at vm-init's
/// lines. Output before the first command's line is a section of its own
/// when it holds anything but blank lines; output after a command's last
/// line (a process it left behind) stays with it. vm-init's closing line
/// is found after output that does not end in a newline, too.
pub fn sections(output: &str) -> Vec<Section> {
    struct Open<'a> {
        section: Section,
        lines: Vec<&'a str>,
    }
    fn close(open: Open<'_>, out: &mut Vec<Section>) {
        let Open { mut section, lines } = open;
        if section.command.is_none() && lines.iter().all(|l| l.trim().is_empty()) {
            return;
        }
        section.vm_init_lines = lines
            .iter()
            .filter(|l| l.starts_with("vm-init: "))
            .map(|l| l.to_string())
            .collect();
        section.tap = Tap::parse(lines);
        out.push(section);
    }
    let new = |command, argv: &str| {
        let argv: Vec<String> = argv.split_whitespace().map(str::to_string).collect();
        Section {
            command,
            tool: tool_name(&argv),
            argv,
            exited: None,
            tap: Tap::default(),
            vm_init_lines: Vec::new(),
        }
    };
    let mut out = Vec::new();
    let mut open = Open {
        section: new(None, ""),
        lines: Vec::new(),
    };
    for line in output.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mark = line
            .find(MARK)
            .and_then(|at| Some((at, parse_mark(&line[at..])?)));
        let Some((at, mark)) = mark else {
            open.lines.push(line);
            continue;
        };
        if at > 0 {
            open.lines.push(&line[..at]);
        }
        match mark {
            Mark::Start(n, argv) => {
                let next = Open {
                    section: new(Some(n), argv),
                    lines: Vec::new(),
                };
                close(std::mem::replace(&mut open, next), &mut out);
            }
            Mark::End(n, status) if open.section.command == Some(n) => {
                open.section.exited = Some(status.to_string());
            }
            Mark::End(..) => open.lines.push(&line[at..]),
        }
    }
    close(open, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output port of a real boot of the mainline rust kernel running
    /// `validator --count 100 ;; dmabuf-stress security ;; validator
    /// --list-checks --exporter heap`.
    const THREE_COMMANDS: &str = include_str!("../testdata/three-commands-output.txt");

    /// Real kselftest harness output (the series' dmabuf-stat), cut down.
    const KSELFTEST: &str = "\
TAP version 13
1..4
# Starting 4 tests from 2 test cases.
#  RUN           dmabuf.udmabuf.st_ino_nonzero ...
#            OK  dmabuf.udmabuf.st_ino_nonzero
ok 1 dmabuf.udmabuf.st_ino_nonzero
#  RUN           dmabuf.udmabuf.st_ino_unique ...
#            OK  dmabuf.udmabuf.st_ino_unique
ok 2 dmabuf.udmabuf.st_ino_unique
#  RUN           dmabuf.udmabuf.st_size ...
#            OK  dmabuf.udmabuf.st_size
ok 3 dmabuf.udmabuf.st_size
#  RUN           dmabuf.udmabuf.st_blocks ...
# dmabuf-stat.c:530:st_blocks:Expected st.st_blocks (0) == pages * (page / 512) (8)
# st_blocks: Test terminated by assertion
#          FAIL  dmabuf.udmabuf.st_blocks
not ok 4 dmabuf.udmabuf.st_blocks
# FAILED: 3 / 4 tests passed.
# Totals: pass:3 fail:1 xfail:0 xpass:0 skip:0 error:0
";

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn names_checks_of_the_validator_and_the_kselftest() {
        let v = parse_result("ok 3 - udmabuf.st_size: 1000 buffers of 7 sizes").unwrap();
        assert_eq!(
            (v.number, v.name.as_str(), v.ok),
            (Some(3), "udmabuf.st_size", true)
        );
        assert_eq!(v.description, "- udmabuf.st_size: 1000 buffers of 7 sizes");
        let k = parse_result("not ok 4 dmabuf.udmabuf.st_blocks").unwrap();
        assert_eq!(
            (k.number, k.name.as_str(), k.ok),
            (Some(4), "dmabuf.udmabuf.st_blocks", false)
        );
        let s = parse_result("ok 1 - stress.operations").unwrap();
        assert_eq!(s.name, "stress.operations");
        assert!(s.passed() && !s.failed());
    }

    #[test]
    fn reads_skip_and_todo_directives() {
        let k = parse_result(
            "ok 1 dmabuf.udmabuf.st_ino_nonzero # SKIP /dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)",
        )
        .unwrap();
        assert_eq!(k.name, "dmabuf.udmabuf.st_ino_nonzero");
        assert_eq!(
            k.skip,
            Some(Skip {
                directive: "SKIP",
                reason: "/dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)".into()
            })
        );
        assert!(!k.passed() && !k.failed());
        let lower = parse_result("ok 2 - heap.st_size # skip no heap").unwrap();
        assert_eq!(lower.skip.unwrap().reason, "no heap");
        let todo = parse_result("not ok 3 - x # TODO not written").unwrap();
        assert_eq!(todo.skip.as_ref().unwrap().directive, "TODO");
        assert!(!todo.failed());
        // No number, no description.
        let bare = parse_result("ok # SKIP").unwrap();
        assert_eq!((bare.number, bare.name.as_str()), (None, ""));
        assert_eq!(bare.skip.unwrap().reason, "");
        // A `#` inside a word is no directive, nor is `# XFAIL`.
        let hash = parse_result("ok 4 - a#SKIP b # XFAIL c").unwrap();
        assert_eq!(hash.skip, None);
        assert!(parse_result("okay 1").is_none());
        assert!(parse_result("ok1").is_none());
    }

    #[test]
    fn a_kselftest_stream_is_whole() {
        let t = Tap::parse(KSELFTEST.lines());
        assert_eq!(t.version.as_deref(), Some("TAP version 13"));
        assert_eq!(t.planned(), Some(4));
        assert_eq!((t.passed(), t.failed(), t.skipped()), (3, 1, 0));
        assert!(t.problems().is_empty(), "{:?}", t.problems());
    }

    #[test]
    fn a_plan_at_the_end_is_whole() {
        let t = Tap::parse(
            "TAP version 14\nok 1 - a\n  # note\nnot ok 2 - b\n  ok 1 nested\n1..2\n2 passed\n"
                .lines(),
        );
        assert_eq!(t.planned(), Some(2));
        assert_eq!(t.results.len(), 2);
        assert!(t.problems().is_empty(), "{:?}", t.problems());
    }

    #[test]
    fn finds_what_makes_a_stream_not_whole() {
        let problems = |text: &str| Tap::parse(text.lines()).problems();
        assert_eq!(
            problems("TAP version 14\n1..3\nok 1 - a\nok 2 - b\n"),
            ["planned 3 checks but reported 2: the run stopped early (the last: `ok 2 - b`)"]
        );
        assert_eq!(
            problems("1..1\nok 1 - a\nok 2 - b\n"),
            ["planned 1 checks but reported 2"]
        );
        assert_eq!(
            problems("TAP version 14\nok 1 - a\nok 2 - b\n"),
            ["2 results but no plan line `1..N`: the stream was cut short (the last: `ok 2 - b`)"]
        );
        assert_eq!(
            problems("ok 1 - a\n1..2\nok 2 - b\n"),
            ["1 results after the closing plan `1..2`"]
        );
        assert_eq!(
            problems("1..2\nok 1 - a\n1..2\nok 2 - b\n"),
            ["2 plan lines (`1..2`, `1..2`): a stream has one"]
        );
        assert_eq!(
            problems("1..2\nok 1 - a\nok 3 - b\n"),
            ["result 2 is numbered out of order: `ok 3 - b`"]
        );
        assert_eq!(
            problems("TAP version 14\n"),
            ["a `TAP version` line but no plan and no result"]
        );
        // A bail out explains the rest.
        assert_eq!(
            problems("TAP version 14\n1..65\nok 1 - a\nBail out! no /dev/udmabuf\n"),
            ["bailed out: `Bail out! no /dev/udmabuf`"]
        );
        // Unnumbered results count in order.
        assert!(problems("1..2\nok - a\nnot ok - b\n").is_empty());
    }

    #[test]
    fn reads_a_skipped_plan() {
        let t = Tap::parse("TAP version 13\n1..0 # SKIP no dma-buf heaps\n".lines());
        assert_eq!(t.planned(), Some(0));
        assert!(t.problems().is_empty());
        assert_eq!(t.plans[0].skip.as_ref().unwrap().reason, "no dma-buf heaps");
    }

    #[test]
    fn names_tools() {
        assert_eq!(tool_name(&argv("validator --count 100")), "validator");
        assert_eq!(
            tool_name(&argv("/bin/dmabuf-stress fail-nth --exporter heap")),
            "dmabuf-stress fail-nth"
        );
        assert_eq!(
            tool_name(&argv("dmabuf-stress run --threads 8")),
            "dmabuf-stress run"
        );
        assert_eq!(tool_name(&argv("dmabuf-stat -v udmabuf")), "dmabuf-stat");
        assert_eq!(
            tool_name(&argv("dmabuf-bench measure --format json")),
            "dmabuf-bench measure"
        );
        assert_eq!(tool_name(&argv("lsdmabuf-vmtest")), "lsdmabuf-vmtest");
        assert_eq!(tool_name(&argv("cat /proc/meminfo")), "cat");
        assert_eq!(tool_name(&argv("sleep 10")), "sleep");
        assert_eq!(tool_name(&[]), "");
    }

    #[test]
    fn cuts_a_real_output_into_its_commands() {
        let s = sections(THREE_COMMANDS);
        let summary: Vec<_> = s
            .iter()
            .map(|s| {
                (
                    s.command,
                    s.tool.as_str(),
                    s.exited.as_deref(),
                    s.tap.planned(),
                    s.tap.passed(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some(1), "validator", Some("0"), Some(65), 65),
                (Some(2), "dmabuf-stress security", Some("0"), Some(4), 4),
                (Some(3), "validator", Some("0"), None, 0),
            ]
        );
        assert_eq!(
            s[2].argv,
            ["validator", "--list-checks", "--exporter", "heap"]
        );
        assert!(!s[2].tap.is_tap());
        assert!(s[0].tap.problems().is_empty() && s[1].tap.problems().is_empty());
        assert_eq!(s[1].tap.results[3].name, "security.heap.own_buffer");
    }

    #[test]
    fn finds_the_closing_line_after_a_cut_line() {
        let out = "noise\n# vm-init: command 1: validator\nTAP version 14\n1..2\nok 1 - a\nok 2 - b: half a li# vm-init: command 1 exited signal 9\n\
                   # vm-init: command 2: dmabuf-stress run\nvm-init: cannot run /bin/dmabuf-stress: ENOENT: No such file or directory\n\
                   # vm-init: command 2 exited 127\n";
        let s = sections(out);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].command, s[0].label()),
            (
                None,
                "the output before vm-init's first command line".to_string()
            )
        );
        assert_eq!(s[1].exited.as_deref(), Some("signal 9"));
        assert_eq!(s[1].tap.results[1].description, "- b: half a li");
        assert!(s[1].tap.problems().is_empty());
        assert_eq!(s[2].label(), "dmabuf-stress run (command 2)");
        assert_eq!(
            s[2].vm_init_lines,
            ["vm-init: cannot run /bin/dmabuf-stress: ENOENT: No such file or directory"]
        );
        assert!(!s[2].tap.is_tap());
        // Blank lines before the first command are no section.
        assert_eq!(
            sections("\n\n# vm-init: command 1: x\n# vm-init: command 1 exited 0\n").len(),
            1
        );
    }
}
