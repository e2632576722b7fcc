// SPDX-License-Identifier: GPL-2.0
//! The commands' output: TAP results.
//!
//! [`tap_results`] reads the top-level `ok`/`not ok` lines of a TAP stream,
//! with their numbers and their `SKIP` and `TODO` directives, and
//! [`check_name`] names the check of each.

use serde::Serialize;

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

/// The top-level `ok`/`not ok` lines of a TAP stream; indented (nested)
/// results and diagnostics are not counted.
pub fn tap_results(text: &str) -> Vec<TapResult> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(parse_result)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let lower = parse_result("ok 2 - heap.st_size # skip no heap").unwrap();
        assert_eq!(lower.skip.unwrap().reason, "no heap");
        let todo = parse_result("not ok 3 - x # TODO not written").unwrap();
        assert_eq!(todo.skip.as_ref().unwrap().directive, "TODO");
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
    fn counts_top_level_tap() {
        let tap =
            "TAP version 14\n1..3\nok 1 - a\nnot ok 2 - b\n  ok 1 nested\nok 3 - c # SKIP x\n";
        let r = tap_results(tap);
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().filter(|t| !t.ok).count(), 1);
        assert_eq!(r[1].name, "b");
    }
}
