// SPDX-License-Identifier: GPL-2.0
//! The human output: aligned tables in the style of lsblk and lsof, sizes
//! with a one-letter binary suffix (`4K`, `1.5M`) or exact (`--bytes`), and
//! the notes on what could not be read.

use std::fmt::Write;

use crate::model::{Buffer, Holder, Report, ScanNotes, SizeFrom, SortKey, Totals, View};
use crate::raw::one_line;

/// `bytes` the way lsblk prints sizes: binary units with a one-letter
/// suffix, one decimal when it is not a whole number (`512B`, `4K`, `1.5M`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "K", "M", "G", "T", "P", "E"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >> (10 * (unit + 1)) != 0 {
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let div = 1u128 << (10 * unit);
    // Tenths of the unit, rounded half up; 1023.96K is 1M, not 1024.0K.
    let mut tenths = (u128::from(bytes) * 10 + div / 2) / div;
    if tenths >= 10240 && unit + 1 < UNITS.len() {
        unit += 1;
        tenths = (u128::from(bytes) * 10 + (div << 9)) / (div << 10);
    }
    if tenths % 10 == 0 {
        format!("{}{}", tenths / 10, UNITS[unit])
    } else {
        format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// How sizes are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Exact byte counts instead of human-readable ones.
    pub bytes: bool,
}

impl Sizes {
    pub fn fmt(self, bytes: u64) -> String {
        if self.bytes {
            bytes.to_string()
        } else {
            human_size(bytes)
        }
    }

    /// A buffer's size; `>=` marks a lower bound.
    fn buffer(self, b: &Buffer) -> String {
        let s = self.fmt(b.size);
        if b.size_from.exact() {
            s
        } else {
            format!(">={s}")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A table: a heading and rows, columns padded to their widest cell.
struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    fn render(&self, headings: bool, out: &mut String) {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(h, _)| if headings { width(h) } else { 0 })
            .collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let heading: Vec<String> = self.columns.iter().map(|(h, _)| h.to_string()).collect();
        let rows = headings.then_some(&heading).into_iter().chain(&self.rows);
        for row in rows {
            let mut line = String::new();
            for (i, (cell, (_, align))) in row.iter().zip(&self.columns).enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                let pad = widths[i] - width(cell);
                match align {
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

use Align::{Left, Right};

/// `comm[pid]:3,5,mem`: a holder in the buffer view; `mem(2)` for two
/// mappings.
fn holder_cell(h: &Holder) -> String {
    let mut how: Vec<String> = h.fds.iter().map(i32::to_string).collect();
    match h.mappings {
        0 => {}
        1 => how.push("mem".into()),
        n => how.push(format!("mem({n})")),
    }
    format!("{}[{}]:{}", one_line(&h.command), h.pid, how.join(","))
}

fn text_or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => one_line(s),
        _ => "-".into(),
    }
}

/// Renders `view` of `report`: the table and, unless `headings` is false,
/// the totals line.
pub fn render(
    report: &Report,
    view: View,
    sizes: Sizes,
    headings: bool,
    sort: Option<(SortKey, bool)>,
) -> String {
    let mut out = String::new();
    match view {
        View::Buffer => {
            let mut t = Table::new(&[
                ("INO", Right),
                ("SIZE", Right),
                ("EXPORTER", Left),
                ("NAME", Left),
                ("PROCS", Right),
                ("HOLDERS", Left),
            ]);
            for b in &report.buffers {
                t.push(vec![
                    b.ino.to_string(),
                    sizes.buffer(b),
                    text_or_dash(b.exporter.as_deref()),
                    text_or_dash(b.name.as_deref()),
                    b.processes.to_string(),
                    b.holders
                        .iter()
                        .map(holder_cell)
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
            }
            t.render(headings, &mut out);
        }
        View::Process => {
            let mut t = Table::new(&[
                ("PID", Right),
                ("COMMAND", Left),
                ("BUFS", Right),
                ("FDS", Right),
                ("MAPS", Right),
                ("RSS", Right),
                ("PSS", Right),
            ]);
            for p in &report.processes {
                t.push(vec![
                    p.pid.to_string(),
                    one_line(&p.command),
                    p.buffers.to_string(),
                    p.fds.to_string(),
                    p.mappings.to_string(),
                    sizes.fmt(p.rss),
                    sizes.fmt(p.pss),
                ]);
            }
            t.render(headings, &mut out);
        }
        View::Exporter => {
            let mut t = Table::new(&[
                ("EXPORTER", Left),
                ("BUFS", Right),
                ("SIZE", Right),
                ("PROCS", Right),
            ]);
            for e in &report.exporters {
                t.push(vec![
                    e.exporter.as_deref().map_or("?".into(), one_line),
                    e.buffers.to_string(),
                    sizes.fmt(e.size),
                    e.processes.to_string(),
                ]);
            }
            t.render(headings, &mut out);
        }
        View::Holder => {
            let mut t = Table::new(&[
                ("PID", Right),
                ("COMMAND", Left),
                ("FDS", Left),
                ("MAPS", Right),
                ("INO", Right),
                ("SIZE", Right),
                ("EXPORTER", Left),
                ("NAME", Left),
            ]);
            for r in report.holder_rows(sort) {
                let fds: Vec<String> = r.holder.fds.iter().map(i32::to_string).collect();
                t.push(vec![
                    r.holder.pid.to_string(),
                    one_line(&r.holder.command),
                    if fds.is_empty() {
                        "-".into()
                    } else {
                        fds.join(",")
                    },
                    r.holder.mappings.to_string(),
                    r.buffer.ino.to_string(),
                    sizes.buffer(r.buffer),
                    text_or_dash(r.buffer.exporter.as_deref()),
                    text_or_dash(r.buffer.name.as_deref()),
                ]);
            }
            t.render(headings, &mut out);
        }
    }
    if headings {
        out.push_str(&totals_line(&report.totals, sizes));
        out.push('\n');
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `total: 3 buffers, 28K, held by 2 processes through 4 fds and 1 mapping: Rss 40K, Pss 28K`.
pub fn totals_line(t: &Totals, sizes: Sizes) -> String {
    format!(
        "total: {}, {}, held by {} through {} and {}: Rss {}, Pss {}",
        plural(t.buffers, "buffer", "buffers"),
        sizes.fmt(t.size),
        plural(t.processes, "process", "processes"),
        plural(t.fds, "fd", "fds"),
        plural(t.mappings, "mapping", "mappings"),
        sizes.fmt(t.rss),
        sizes.fmt(t.pss),
    )
}

/// What the reader must know about the walk, one line each: processes that
/// could not be read and why, buffers whose size is a lower bound, kernels
/// too old to tell buffers apart, text that could not be parsed. `root` is
/// whether lsdmabuf ran as root (for the advice to).
pub fn notes(report: &Report, root: bool) -> Vec<String> {
    let s: &ScanNotes = &report.scan;
    let mut out = Vec::new();
    let unreadable = s.unreadable_count();
    if unreadable > 0 {
        let why: Vec<String> = s
            .unreadable_processes
            .iter()
            .map(|(errno, n)| {
                let desc = s
                    .unreadable
                    .iter()
                    .find(|u| &u.errno == errno)
                    .map_or(String::new(), |u| format!(" ({})", u.error.to_lowercase()));
                format!("{n} {errno}{desc}")
            })
            .collect();
        let mut line = format!(
            "{} of {} could not be read: {}; the dma-bufs they hold are not counted, and the Pss of buffers they share is too high",
            plural(unreadable, "process", "processes"),
            s.processes_read + unreadable,
            why.join(", ")
        );
        let denied = s.unreadable_processes.contains_key("EACCES")
            || s.unreadable_processes.contains_key("EPERM");
        if denied && !root {
            line.push_str(". Run as root to read every process");
        }
        out.push(line);
    }
    let lower: Vec<&Buffer> = report
        .buffers
        .iter()
        .filter(|b| b.size_from == SizeFrom::Mappings)
        .collect();
    if !lower.is_empty() {
        let why: Vec<String> = s
            .unreadable
            .iter()
            .filter(|u| u.pid.is_none())
            .map(|u| format!("{}: {}", u.path, u.errno))
            .collect();
        let mut line = format!(
            "{} seen only through mappings: SIZE >=N is the end of the furthest mapping, a lower bound",
            plural(lower.len(), "buffer", "buffers")
        );
        if !why.is_empty() {
            let _ = write!(line, " (could not read {})", why.join(", "));
        }
        out.push(line);
    }
    if s.legacy_fds > 0 {
        out.push(format!(
            "{} on anon_inodefs not counted: this kernel (before 5.3) gives dma-bufs no inode of their own, so they cannot be told apart",
            plural(s.legacy_fds, "dma-buf fd", "dma-buf fds")
        ));
    }
    out.extend(s.warnings.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_lsblk() {
        for (bytes, s) in [
            (0, "0B"),
            (512, "512B"),
            (1023, "1023B"),
            (1024, "1K"),
            (1536, "1.5K"),
            (4096, "4K"),
            (12288, "12K"),
            (1024 * 1024 - 1, "1M"),
            (1024 * 1024 - 40, "1M"),
            (1024 * 1024 - 60, "1023.9K"),
            (1024 * 1024 - 600, "1023.4K"),
            (3 << 20, "3M"),
            ((3 << 20) + (1 << 19), "3.5M"),
            (64 << 30, "64G"),
            (u64::MAX, "16E"),
        ] {
            assert_eq!(human_size(bytes), s, "{bytes}");
        }
    }

    #[test]
    fn table_aligns_and_trims() {
        let mut t = Table::new(&[("N", Right), ("NAME", Left), ("X", Left)]);
        t.push(vec!["1".into(), "a".into(), "".into()]);
        t.push(vec!["100".into(), "bb".into(), "z".into()]);
        let mut out = String::new();
        t.render(true, &mut out);
        assert_eq!(out, "  N NAME X\n  1 a\n100 bb   z\n");
        let mut out = String::new();
        t.render(false, &mut out);
        assert_eq!(out, "  1 a\n100 bb z\n");
    }
}
