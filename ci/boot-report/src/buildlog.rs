// SPDX-License-Identifier: GPL-2.0
//! Reading the compiler diagnostics of a kernel build log.
//!
//! rustc and clippy print each diagnostic as a block: a `warning: ...` or
//! `error: ...` line, its locations (`--> path:line:col`, and `::: path:...`
//! for macro expansion sites), the quoted source, and a blank line. A
//! diagnostic belongs to a set of files when any of its locations is in one
//! of them; a location in the generated doctest file belongs to the source
//! file of the doctest it is in.

use serde::Serialize;

/// One compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The first line, such as `warning: this lint expectation is unfulfilled`.
    pub headline: String,
    /// Every `path:line` the diagnostic points at, paths relative to the
    /// source tree (doctests: relative to the build directory).
    pub locations: Vec<(String, usize)>,
    /// The whole block, as printed.
    pub lines: Vec<String>,
}

fn is_headline(line: &str) -> bool {
    ["warning", "error"].iter().any(|kind| {
        line.strip_prefix(kind)
            .map(|rest| rest.starts_with(": ") || (rest.starts_with('[') && rest.contains("]: ")))
            .unwrap_or(false)
    })
}

/// Parses `--> ../rust/kernel/fs.rs:12:5` into (`rust/kernel/fs.rs`, 12).
fn location(line: &str) -> Option<(String, usize)> {
    let t = line.trim_start();
    let rest = t
        .strip_prefix("-->")
        .or_else(|| t.strip_prefix(":::"))?
        .trim();
    let mut parts = rest.rsplitn(3, ':');
    let _col = parts.next()?;
    let line_no = parts.next()?.parse().ok()?;
    let path = parts.next()?;
    let path = path.trim_start_matches("../");
    Some((path.to_string(), line_no))
}

/// Every diagnostic with at least one location in a build log; summary lines
/// such as `warning: 6 warnings emitted` are not diagnostics.
pub fn diagnostics(log: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut current: Option<Diagnostic> = None;
    for line in log.lines() {
        if is_headline(line) {
            out.extend(current.take());
            current = Some(Diagnostic {
                headline: line.to_string(),
                locations: Vec::new(),
                lines: vec![line.to_string()],
            });
            continue;
        }
        let Some(d) = current.as_mut() else { continue };
        if line.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        if let Some(loc) = location(line) {
            d.locations.push(loc);
        }
        d.lines.push(line.to_string());
    }
    out.extend(current);
    out.retain(|d| !d.locations.is_empty());
    out
}

/// The generated doctest file, relative to the build directory.
pub const DOCTESTS: &str = "rust/doctests_kernel_generated.rs";

/// The source file of the doctest at `line` (1-based) of the generated
/// doctest file `generated`: the path its KUnit assertions report.
pub fn doctest_source(generated: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = generated.lines().collect();
    let start = lines[..line.min(lines.len())]
        .iter()
        .rposition(|l| l.contains("fn rust_doctest_kernel_"))?;
    lines[start..].iter().find_map(|l| {
        let at = l.find("\"rust/")?;
        let rest = &l[at + 1..];
        let end = rest.find('"')?;
        rest[..end]
            .ends_with(".rs")
            .then(|| rest[..end].to_string())
    })
}

/// Whether a diagnostic points into one of `files` (source-tree paths),
/// mapping doctest locations to their source files through `generated`.
pub fn touches(d: &Diagnostic, files: &[String], generated: Option<&str>) -> bool {
    d.locations.iter().any(|(path, line)| {
        let path = if path == DOCTESTS {
            match generated.and_then(|g| doctest_source(g, *line)) {
                Some(p) => p,
                None => return false,
            }
        } else {
            path.clone()
        };
        files.contains(&path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clippy warnings of a real CLIPPY=1 build of the base 6.12.117
    /// tree with rustc 1.96, and one of a draft of the series.
    const LOG: &str = include_str!("../testdata/clippy-build.log");

    #[test]
    fn parses_every_located_diagnostic() {
        let d = diagnostics(LOG);
        assert_eq!(d.len(), 4);
        assert_eq!(
            d[0].headline,
            "warning: this lint expectation is unfulfilled"
        );
        assert_eq!(
            d[0].locations,
            vec![("rust/kernel/print.rs".to_string(), 16)]
        );
        assert_eq!(
            d[1].locations,
            vec![
                ("rust/kernel/init/macros.rs".to_string(), 995),
                ("rust/kernel/sync/arc.rs".to_string(), 133)
            ]
        );
        assert!(d[2]
            .headline
            .contains("consider adding a `Default` implementation"));
        assert_eq!(d[2].locations[0].0, "rust/kernel/fs/pseudo.rs");
        assert_eq!(d[3].locations[0].0, DOCTESTS);
    }

    #[test]
    fn attributes_diagnostics_to_files() {
        let d = diagnostics(LOG);
        let ours = vec![
            "rust/kernel/fs/pseudo.rs".to_string(),
            "rust/kernel/fs.rs".to_string(),
        ];
        let generated = "\n".repeat(9)
            + "pub extern \"C\" fn rust_doctest_kernel_fs_pseudo_rs_1(__kunit_test: *mut kernel::bindings::kunit) {\n"
            + "    kernel::kunit_assert!(\"rust_doctest_kernel_fs_pseudo_rs_1\", \"rust/kernel/fs/pseudo.rs\", __DOCTEST_ANCHOR - 276, $cond);\n"
            + &"\n".repeat(2000);
        assert!(!touches(&d[0], &ours, Some(&generated)));
        assert!(!touches(&d[1], &ours, Some(&generated)));
        assert!(touches(&d[2], &ours, Some(&generated)));
        // The doctest warning at line 1592 of the generated file.
        assert!(touches(&d[3], &ours, Some(&generated)));
        assert!(!touches(&d[3], &ours, None));
    }

    #[test]
    fn finds_the_source_of_a_doctest() {
        let g = "x\nfn rust_doctest_kernel_a_rs_0() {\n  f(\"rust/kernel/a.rs\", 1);\n  body\n}\nfn rust_doctest_kernel_b_rs_0() {\n  f(\"rust/kernel/b.rs\", 1);\n  body\n";
        assert_eq!(doctest_source(g, 4).as_deref(), Some("rust/kernel/a.rs"));
        assert_eq!(doctest_source(g, 8).as_deref(), Some("rust/kernel/b.rs"));
        assert_eq!(doctest_source(g, 1), None);
    }
}
