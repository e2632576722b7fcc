// SPDX-License-Identifier: GPL-2.0
//! The output for people and spreadsheets: aligned tables in the style of
//! lsblk and lsfd, with columns chosen by name (`-o`), sizes with a
//! one-letter binary suffix (`4K`, `1.5M`) or exact (`--bytes`); the same
//! cells as CSV; the watch mode's ticks; and the notes on what could not be
//! read.
//!
//! A cell that has no value (an unknown exporter, a buffer never named, no
//! fd) is `-` in every view; a size that is only a lower bound is `>=N`,
//! and so is every sum it is part of.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::{
    Buffer, Changes, Exporter, Group, HolderRow, Process, Report, ScanNotes, SizeFrom, SortKey,
    Totals, Unreadable, View,
};
use crate::raw::{one_line, Reads};

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

    /// A size that is exact, or `>=` it when it is a lower bound.
    pub fn bound(self, bytes: u64, exact: bool) -> String {
        if exact {
            self.fmt(bytes)
        } else {
            format!(">={}", self.fmt(bytes))
        }
    }

    /// A change of size: `+4K`, `-8K`, `0B`.
    pub fn change(self, bytes: i64) -> String {
        let s = self.fmt(bytes.unsigned_abs());
        match bytes.signum() {
            1 => format!("+{s}"),
            -1 => format!("-{s}"),
            _ => s,
        }
    }

    fn buffer(self, b: &Buffer) -> String {
        self.bound(b.size, b.size_from.exact())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

use Align::{Left, Right};

/// A column of the tables: the same name, and the same meaning, in every
/// view that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Ino,
    Size,
    Exporter,
    Name,
    Procs,
    Holders,
    Importers,
    Pid,
    Command,
    Uid,
    User,
    Cgroup,
    Bufs,
    Fds,
    Maps,
    Rss,
    Pss,
}

impl Column {
    pub const ALL: [Column; 17] = [
        Column::Ino,
        Column::Size,
        Column::Exporter,
        Column::Name,
        Column::Procs,
        Column::Holders,
        Column::Importers,
        Column::Pid,
        Column::Command,
        Column::Uid,
        Column::User,
        Column::Cgroup,
        Column::Bufs,
        Column::Fds,
        Column::Maps,
        Column::Rss,
        Column::Pss,
    ];

    /// The heading, which is also the name `-o` takes (in any case).
    pub fn name(self) -> &'static str {
        match self {
            Column::Ino => "INO",
            Column::Size => "SIZE",
            Column::Exporter => "EXPORTER",
            Column::Name => "NAME",
            Column::Procs => "PROCS",
            Column::Holders => "HOLDERS",
            Column::Importers => "IMPORTERS",
            Column::Pid => "PID",
            Column::Command => "COMMAND",
            Column::Uid => "UID",
            Column::User => "USER",
            Column::Cgroup => "CGROUP",
            Column::Bufs => "BUFS",
            Column::Fds => "FDS",
            Column::Maps => "MAPS",
            Column::Rss => "RSS",
            Column::Pss => "PSS",
        }
    }

    fn align(self) -> Align {
        match self {
            Column::Ino
            | Column::Size
            | Column::Procs
            | Column::Pid
            | Column::Uid
            | Column::Bufs
            | Column::Fds
            | Column::Maps
            | Column::Rss
            | Column::Pss => Right,
            _ => Left,
        }
    }

    /// What the walk must read beyond its usual files to fill the column.
    pub fn reads(self) -> Reads {
        Reads {
            users: matches!(self, Column::Uid | Column::User),
            cgroups: self == Column::Cgroup,
            importers: self == Column::Importers,
            unheld: false,
        }
    }

    fn parse(name: &str) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The columns `view` has, in the order `-o` lists them in `--help`.
pub fn columns(view: View) -> &'static [Column] {
    use Column as C;
    match view {
        View::Buffer => &[
            C::Ino,
            C::Size,
            C::Exporter,
            C::Name,
            C::Procs,
            C::Holders,
            C::Importers,
        ],
        View::Process => &[
            C::Pid,
            C::Command,
            C::Uid,
            C::User,
            C::Cgroup,
            C::Bufs,
            C::Fds,
            C::Maps,
            C::Rss,
            C::Pss,
        ],
        View::Exporter => &[C::Exporter, C::Bufs, C::Size, C::Procs],
        View::Holder => &[
            C::Pid,
            C::Command,
            C::Uid,
            C::User,
            C::Cgroup,
            C::Fds,
            C::Maps,
            C::Ino,
            C::Size,
            C::Exporter,
            C::Name,
            C::Importers,
            C::Pss,
        ],
        View::Grid => &[C::Ino, C::Size, C::Exporter, C::Name, C::Procs],
        View::User => &[
            C::User,
            C::Uid,
            C::Procs,
            C::Bufs,
            C::Fds,
            C::Maps,
            C::Rss,
            C::Pss,
        ],
        View::Cgroup => &[
            C::Cgroup,
            C::Procs,
            C::Bufs,
            C::Fds,
            C::Maps,
            C::Rss,
            C::Pss,
        ],
    }
}

/// The columns `view` shows without `-o`.
pub fn default_columns(view: View) -> Vec<Column> {
    use Column as C;
    columns(view)
        .iter()
        .copied()
        .filter(|c| match view {
            View::Buffer => *c != C::Importers,
            View::Process => !matches!(c, C::Uid | C::User | C::Cgroup | C::Importers),
            View::Holder => !matches!(c, C::Uid | C::User | C::Cgroup | C::Importers | C::Pss),
            _ => true,
        })
        .collect()
}

/// The columns `-o SPEC` chooses for `view`: names separated by commas, in
/// any case; a leading `+` adds them to the default columns.
pub fn parse_columns(view: View, spec: &str) -> Result<Vec<Column>, String> {
    let (mut chosen, names) = match spec.strip_prefix('+') {
        Some(rest) => (default_columns(view), rest),
        None => (Vec::new(), spec),
    };
    let known = || {
        columns(view)
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(",")
    };
    for name in names.split(',').filter(|n| !n.trim().is_empty()) {
        let column = Column::parse(name)
            .filter(|c| columns(view).contains(c))
            .ok_or_else(|| {
                format!(
                    "-o {spec}: --by {view} has no column `{}`; its columns are {}",
                    name.trim(),
                    known()
                )
            })?;
        if !chosen.contains(&column) {
            chosen.push(column);
        }
    }
    if chosen.is_empty() {
        return Err(format!(
            "-o {spec}: no column named; --by {view} has {}",
            known()
        ));
    }
    Ok(chosen)
}

/// What the walk must read for `columns`.
pub fn reads_for(columns: &[Column]) -> Reads {
    columns.iter().fold(Reads::default(), |r, c| {
        let c = c.reads();
        Reads {
            users: r.users || c.users,
            cgroups: r.cgroups || c.cgroups,
            unheld: r.unheld || c.unheld,
            importers: r.importers || c.importers,
        }
    })
}

/// A table: a heading and rows, columns padded to their widest cell.
struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[Column]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|c| (c.name().to_string(), c.align()))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The table with a first column named `heading`.
    fn with_first(heading: &str, columns: &[Column]) -> Table {
        let mut t = Table::new(columns);
        t.columns.insert(0, (heading.to_string(), Left));
        t
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
        let heading: Vec<String> = self.columns.iter().map(|(h, _)| h.clone()).collect();
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

    /// The table as CSV (RFC 4180): a heading line unless `headings` is
    /// false, then the rows.
    fn csv(&self, headings: bool, out: &mut String) {
        let heading: Vec<String> = self.columns.iter().map(|(h, _)| h.clone()).collect();
        for row in headings.then_some(&heading).into_iter().chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
    }
}

/// One CSV field, quoted when it holds a comma, a quote, a line break or
/// space at either end.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.trim() != s {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Reads CSV text back into rows of fields (RFC 4180: quoted fields may
/// hold commas, doubled quotes and line breaks; lines end with CRLF or LF).
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            '"' => return Err(format!("line {line}: a quote inside an unquoted field")),
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                line += 1;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {line}: a quoted field is not closed"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// `comm[pid]:3,5,mem`: a holder in the buffer view; `mem(2)` for two
/// mappings.
fn holder_cell(h: &crate::model::Holder) -> String {
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

fn list_or_dash(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(|s| one_line(s))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// A user by name, else by uid; `-` when not known.
fn user_cell(uid: Option<u32>, user: Option<&str>) -> String {
    match (user, uid) {
        (Some(name), _) if !name.is_empty() => one_line(name),
        (_, Some(uid)) => uid.to_string(),
        _ => "-".into(),
    }
}

fn uid_cell(uid: Option<u32>) -> String {
    uid.map_or("-".into(), |u| u.to_string())
}

/// The importers of a buffer: its attached devices; `-` for none, and when
/// bufinfo was not read (the notes say so; JSON tells `[]` from `null`).
fn importers_cell(b: &Buffer) -> String {
    list_or_dash(b.importers.as_deref().unwrap_or_default(), ",")
}

fn buffer_cell(c: Column, b: &Buffer, sizes: Sizes) -> String {
    match c {
        Column::Ino => b.ino.to_string(),
        Column::Size => sizes.buffer(b),
        Column::Exporter => text_or_dash(b.exporter.as_deref()),
        Column::Name => text_or_dash(b.name.as_deref()),
        Column::Procs => b.processes.to_string(),
        Column::Holders => {
            let cells: Vec<String> = b.holders.iter().map(holder_cell).collect();
            if cells.is_empty() {
                "-".into()
            } else {
                cells.join(" ")
            }
        }
        Column::Importers => importers_cell(b),
        _ => "-".into(),
    }
}

fn process_cell(c: Column, p: &Process, sizes: Sizes) -> String {
    match c {
        Column::Pid => p.pid.to_string(),
        Column::Command => one_line(&p.command),
        Column::Uid => uid_cell(p.uid),
        Column::User => user_cell(p.uid, p.user.as_deref()),
        Column::Cgroup => text_or_dash(p.cgroup.as_deref()),
        Column::Bufs => p.buffers.to_string(),
        Column::Fds => p.fds.to_string(),
        Column::Maps => p.mappings.to_string(),
        Column::Rss => sizes.bound(p.rss, p.exact),
        Column::Pss => sizes.bound(p.pss, p.exact),
        _ => "-".into(),
    }
}

fn exporter_cell(c: Column, e: &Exporter, sizes: Sizes) -> String {
    match c {
        Column::Exporter => text_or_dash(e.exporter.as_deref()),
        Column::Bufs => e.buffers.to_string(),
        Column::Size => sizes.bound(e.size, e.exact),
        Column::Procs => e.processes.to_string(),
        _ => "-".into(),
    }
}

fn holder_row_cell(c: Column, r: &HolderRow, p: Option<&Process>, sizes: Sizes) -> String {
    match c {
        Column::Pid => r.holder.pid.to_string(),
        Column::Command => one_line(&r.holder.command),
        Column::Uid => uid_cell(p.and_then(|p| p.uid)),
        Column::User => user_cell(p.and_then(|p| p.uid), p.and_then(|p| p.user.as_deref())),
        Column::Cgroup => text_or_dash(p.and_then(|p| p.cgroup.as_deref())),
        Column::Fds => {
            let fds: Vec<String> = r.holder.fds.iter().map(i32::to_string).collect();
            list_or_dash(&fds, ",")
        }
        Column::Maps => r.holder.mappings.to_string(),
        Column::Pss => sizes.bound(r.holder.pss, r.buffer.size_from.exact()),
        _ => buffer_cell(c, r.buffer, sizes),
    }
}

fn group_cell(c: Column, g: &Group, sizes: Sizes) -> String {
    match c {
        Column::User => user_cell(g.uid, g.user.as_deref()),
        Column::Uid => uid_cell(g.uid),
        Column::Cgroup => text_or_dash(g.cgroup.as_deref()),
        Column::Procs => g.processes.to_string(),
        Column::Bufs => g.buffers.to_string(),
        Column::Fds => g.fds.to_string(),
        Column::Maps => g.mappings.to_string(),
        Column::Rss => sizes.bound(g.rss, g.exact),
        Column::Pss => sizes.bound(g.pss, g.exact),
        _ => "-".into(),
    }
}

/// How a report is printed.
#[derive(Debug, Clone)]
pub struct Layout {
    pub view: View,
    pub columns: Vec<Column>,
    pub sizes: Sizes,
    /// Print the heading line (and, for tables, the totals line).
    pub headings: bool,
    pub sort: Option<(SortKey, bool)>,
}

impl Layout {
    /// `view` with its default columns and headings.
    pub fn new(view: View, sizes: Sizes) -> Layout {
        Layout {
            view,
            columns: default_columns(view),
            sizes,
            headings: true,
            sort: None,
        }
    }
}

/// The table of `layout.view` over `report`.
fn table(report: &Report, layout: &Layout, sizes: Sizes) -> Table {
    let cols = &layout.columns;
    let mut t = Table::new(cols);
    let row = |cell: &dyn Fn(Column) -> String| cols.iter().map(|&c| cell(c)).collect();
    match layout.view {
        View::Buffer => {
            for b in &report.buffers {
                t.push(row(&|c| buffer_cell(c, b, sizes)));
            }
        }
        View::Process => {
            for p in &report.processes {
                t.push(row(&|c| process_cell(c, p, sizes)));
            }
        }
        View::Exporter => {
            for e in &report.exporters {
                t.push(row(&|c| exporter_cell(c, e, sizes)));
            }
        }
        View::Holder => {
            let procs: BTreeMap<i32, &Process> =
                report.processes.iter().map(|p| (p.pid, p)).collect();
            for r in report.holder_rows(layout.sort) {
                let p = procs.get(&r.holder.pid).copied();
                t.push(row(&|c| holder_row_cell(c, &r, p, sizes)));
            }
        }
        View::User => {
            for g in report.users.iter().flatten() {
                t.push(row(&|c| group_cell(c, g, sizes)));
            }
        }
        View::Cgroup => {
            for g in report.cgroups.iter().flatten() {
                t.push(row(&|c| group_cell(c, g, sizes)));
            }
        }
        View::Grid => return grid_table(report, layout, sizes, false),
    }
    t
}

/// `--by grid`: a row per buffer (its columns `layout.columns`), then a
/// column per process, `COMMAND[PID]`, with its Pss of the buffer, `-`
/// where it holds none; with `total`, a last row of each process's Pss.
fn grid_table(report: &Report, layout: &Layout, sizes: Sizes, total: bool) -> Table {
    let cols = &layout.columns;
    let grid = report.grid();
    let mut t = Table::new(cols);
    for p in &grid.processes {
        t.columns
            .push((format!("{}[{}]", one_line(&p.command), p.pid), Right));
    }
    for (b, r) in report.buffers.iter().zip(&grid.rows) {
        let exact = b.size_from.exact();
        let mut row: Vec<String> = cols.iter().map(|&c| buffer_cell(c, b, sizes)).collect();
        row.extend(
            r.pss
                .iter()
                .map(|pss| pss.map_or("-".into(), |n| sizes.bound(n, exact))),
        );
        t.push(row);
    }
    if total {
        let mut row = vec![String::new(); cols.len()];
        if let Some(first) = row.first_mut() {
            *first = "PSS".into();
        }
        row.extend(
            grid.pss
                .iter()
                .zip(&report.processes)
                .map(|(&n, p)| sizes.bound(n, p.exact)),
        );
        t.push(row);
    }
    t
}

/// Renders `layout.view` of `report`: the table and, with headings, the
/// totals line.
pub fn render(report: &Report, layout: &Layout) -> String {
    let mut out = String::new();
    let t = if layout.view == View::Grid {
        // The sums of the columns, as dmabuf_dump -a prints them.
        grid_table(report, layout, layout.sizes, layout.headings)
    } else {
        table(report, layout, layout.sizes)
    };
    t.render(layout.headings, &mut out);
    if layout.headings {
        out.push_str(&totals_line(&report.totals, layout.sizes));
        out.push('\n');
    }
    out
}

/// `layout.view` of `report` as CSV, sizes in bytes; the heading line
/// unless `layout.headings` is false, no totals.
pub fn render_csv(report: &Report, layout: &Layout) -> String {
    let mut out = String::new();
    table(report, layout, Sizes { bytes: true }).csv(layout.headings, &mut out);
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `total: 3 buffers, 28K, held by 2 processes through 4 fds and 1 mapping:
/// Rss 40K, Pss 28K`; with `--all`, then `; held by no process: 1 buffer,
/// 4K; bufinfo: 4 buffers, 32K`.
pub fn totals_line(t: &Totals, sizes: Sizes) -> String {
    let mut line = format!(
        "total: {}, {}, held by {} through {} and {}: Rss {}, Pss {}",
        plural(t.buffers, "buffer", "buffers"),
        sizes.bound(t.size, t.exact),
        plural(t.processes, "process", "processes"),
        plural(t.fds, "fd", "fds"),
        plural(t.mappings, "mapping", "mappings"),
        sizes.bound(t.rss, t.exact),
        sizes.bound(t.pss, t.exact),
    );
    if let Some(u) = t.unheld {
        let _ = write!(
            line,
            "; held by no process: {}, {}",
            plural(u.buffers, "buffer", "buffers"),
            sizes.fmt(u.size)
        );
        if let Some(s) = t.system {
            let _ = write!(
                line,
                "; bufinfo: {}, {}",
                plural(s.buffers, "buffer", "buffers"),
                sizes.fmt(s.size)
            );
        }
    }
    line
}

/// `HH:MM:SS`, local time when the C library knows the zone, else UTC.
pub fn clock(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: `tm` is a plain C struct that localtime_r() fills; both
    // pointers are valid for the call, and localtime_r() keeps neither.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::localtime_r(&secs, &mut tm).is_null()).then_some(tm)
    };
    match tm {
        Some(tm) => format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec),
        None => {
            let s = secs.rem_euclid(86400);
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
    }
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// A watch tick: a line that says what changed, then the buffers new and
/// gone (with `buffer_columns`) and the processes whose holdings changed,
/// each with how much.
pub fn render_changes(c: &Changes, clock: &str, buffer_columns: &[Column], sizes: Sizes) -> String {
    let mut out = String::new();
    let t = &c.totals;
    let mut now = format!(
        "{}, {}",
        plural(t.buffers, "buffer", "buffers"),
        sizes.bound(t.size, t.exact)
    );
    if c.size_change != 0 {
        let _ = write!(now, " ({})", sizes.change(c.size_change));
    }
    if c.is_empty() {
        let _ = writeln!(out, "{clock} no change: {now}");
        return out;
    }
    let _ = writeln!(
        out,
        "{clock} {} new, {} gone, {} changed: {now}",
        plural(c.new.len(), "buffer", "buffers"),
        c.gone.len(),
        plural(c.processes.len(), "process", "processes")
    );
    if !c.new.is_empty() || !c.gone.is_empty() {
        let mut table = Table::with_first("BUFFER", buffer_columns);
        for (what, list) in [("new", &c.new), ("gone", &c.gone)] {
            for b in list {
                let mut row = vec![what.to_string()];
                row.extend(buffer_columns.iter().map(|&col| buffer_cell(col, b, sizes)));
                table.push(row);
            }
        }
        table.render(true, &mut out);
    }
    if !c.processes.is_empty() {
        let cols = [
            Column::Pid,
            Column::Command,
            Column::Bufs,
            Column::Fds,
            Column::Maps,
            Column::Rss,
            Column::Pss,
        ];
        let mut table = Table::with_first("PROCESS", &cols);
        for p in &c.processes {
            let count = |n: usize, d: i64| {
                if d == 0 {
                    n.to_string()
                } else {
                    format!("{n} ({})", signed(d))
                }
            };
            let size = |n: u64, d: i64| {
                let s = sizes.bound(n, p.exact);
                if d == 0 {
                    s
                } else {
                    format!("{s} ({})", sizes.change(d))
                }
            };
            table.push(vec![
                p.change.to_string(),
                p.pid.to_string(),
                one_line(&p.command),
                count(p.buffers, p.buffers_change),
                count(p.fds, p.fds_change),
                count(p.mappings, p.mappings_change),
                size(p.rss, p.rss_change),
                size(p.pss, p.pss_change),
            ]);
        }
        table.render(true, &mut out);
    }
    out
}

/// What `-p` and `-e` asked, for the notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// A `--pid` or `--exporter` filter was given.
    pub filtered: bool,
    /// What the options asked the walk to read.
    pub reads: Reads,
}

/// What to do about a file that could not be read: debugfs' bufinfo.
fn bufinfo_advice(errno: &str) -> &'static str {
    match errno {
        "EACCES" | "EPERM" => "debugfs is root's: run as root",
        "ENOENT" => {
            "mount debugfs (mount -t debugfs none /sys/kernel/debug) on a kernel with \
             CONFIG_DEBUG_FS=y"
        }
        _ => "",
    }
}

/// The walk's failure to read debugfs' bufinfo, if it had one.
pub(crate) fn bufinfo_failure(s: &ScanNotes) -> Option<&Unreadable> {
    s.unreadable
        .iter()
        .find(|u| u.pid.is_none() && u.path.ends_with("/bufinfo"))
}

/// That failure as `PATH: ERROR`, and what to do about it when something
/// can be done.
pub(crate) fn bufinfo_why(u: &Unreadable) -> String {
    match bufinfo_advice(&u.errno) {
        "" => format!("{}: {}", u.path, u.error),
        advice => format!("{}: {}: {advice}", u.path, u.error),
    }
}

/// What the reader must know about the walk, one line each: processes that
/// could not be read and why, buffers whose size is a lower bound, whether
/// any dma-buf exists when no process holds one, kernels too old to tell
/// buffers apart, text that could not be parsed. What an option asked for
/// and could not be read is the verdict's ([`crate::verdict`]). `root` is whether the walk ran as root (for the
/// advice to), when known.
pub fn notes(report: &Report, root: Option<bool>, asked: Asked) -> Vec<String> {
    let s: &ScanNotes = &report.scan;
    let mut out = Vec::new();
    let bufinfo_failure = bufinfo_failure(s);
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
            "{} of {} could not be read: {}; the dma-bufs they hold are not counted",
            plural(unreadable, "process", "processes"),
            s.processes_read + unreadable,
            why.join(", ")
        );
        if !report.buffers.is_empty() {
            line.push_str(", and the Pss of buffers they share is too high");
        }
        let denied = s.unreadable_processes.contains_key("EACCES")
            || s.unreadable_processes.contains_key("EPERM");
        if denied && root == Some(false) {
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
            .filter(|u| {
                u.pid.is_none() && !u.path.ends_with("/status") && !u.path.ends_with("/cgroup")
            })
            .map(|u| format!("{}: {}", u.path, u.errno))
            .collect();
        let mut line = format!(
            "{} seen only through mappings: SIZE >=N is the end of the furthest mapping, a lower bound, and so are the sums it is in",
            plural(lower.len(), "buffer", "buffers")
        );
        if !why.is_empty() {
            let _ = write!(line, " (could not read {})", why.join(", "));
        }
        out.push(line);
    }
    if report.buffers.is_empty() && !asked.filtered {
        out.push(none_listed(report, root));
    }
    // What --all and IMPORTERS could not read makes the exit status 2, and
    // crate::verdict says why.
    if asked.reads.importers
        && bufinfo_failure.is_none()
        && report.totals.system.is_some()
        && report.buffers.iter().any(|b| b.importers.is_none())
    {
        out.push(
            "IMPORTERS is - for the buffers bufinfo did not list (made during the walk)".into(),
        );
    }
    if asked.reads.cgroups {
        let missing = s
            .unreadable
            .iter()
            .filter(|u| u.pid.is_none() && u.path.ends_with("/cgroup"))
            .count();
        if missing > 0 {
            let first = s.unreadable.iter().find(|u| u.path.ends_with("/cgroup"));
            let line = match first {
                Some(u) if u.errno == "ENOENT" => format!(
                    "CGROUP is - for {}: there is no /proc/PID/cgroup, the kernel has no cgroups \
                     (CONFIG_CGROUPS)",
                    plural(missing, "process", "processes")
                ),
                Some(u) => format!(
                    "CGROUP is - for {}: {}: {}",
                    plural(missing, "process", "processes"),
                    u.path,
                    u.error
                ),
                None => String::new(),
            };
            out.push(line);
        }
    }
    if asked.reads.users {
        let missing: Vec<_> = s
            .unreadable
            .iter()
            .filter(|u| u.pid.is_none() && u.path.ends_with("/status"))
            .collect();
        if let Some(u) = missing.first() {
            out.push(format!(
                "USER is - for {}: {}: {}",
                plural(missing.len(), "process", "processes"),
                u.path,
                u.error
            ));
        }
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

/// Why a view without filters lists no buffer: none exists, or no process
/// holds one (that can be read), and what debugfs bufinfo says of the
/// others. `root` is whether the walk ran as root, when known.
pub fn none_listed(report: &Report, root: Option<bool>) -> String {
    let s = &report.scan;
    match report.totals.system {
        Some(c) if c.buffers == 0 => "no dma-buf exists: debugfs bufinfo lists none".into(),
        Some(c) => format!(
            "no process holds a dma-buf, but {} of {} exist (held by the kernel, a device or an fd in flight){}",
            plural(c.buffers, "dma-buf", "dma-bufs"),
            human_size(c.size),
            if s.read_unheld {
                ""
            } else {
                ": lsdmabuf --all lists them"
            }
        ),
        None => {
            let whose = if root == Some(false) {
                "that can be read "
            } else {
                ""
            };
            match bufinfo_failure(s) {
                Some(u) => format!(
                    "no process {whose}holds a dma-buf; debugfs bufinfo, which would say \
                     whether any dma-buf exists, could not be read: {}",
                    bufinfo_why(u)
                ),
                None => format!(
                    "no process {whose}holds a dma-buf; debugfs bufinfo, which would say \
                     whether any dma-buf exists, was not read"
                ),
            }
        }
    }
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
        let s = Sizes { bytes: false };
        assert_eq!(
            (s.bound(4096, false), s.change(-8192), s.change(0)),
            (">=4K".into(), "-8K".into(), "0B".into())
        );
    }

    #[test]
    fn table_aligns_and_trims() {
        let mut t = Table {
            columns: vec![
                ("N".into(), Right),
                ("NAME".into(), Left),
                ("X".into(), Left),
            ],
            rows: Vec::new(),
        };
        t.push(vec!["1".into(), "a".into(), "".into()]);
        t.push(vec!["100".into(), "bb".into(), "z".into()]);
        let mut out = String::new();
        t.render(true, &mut out);
        assert_eq!(out, "  N NAME X\n  1 a\n100 bb   z\n");
        let mut out = String::new();
        t.render(false, &mut out);
        assert_eq!(out, "  1 a\n100 bb z\n");
    }

    #[test]
    fn columns_by_name() {
        assert_eq!(
            parse_columns(View::Buffer, "+importers").unwrap(),
            [
                Column::Ino,
                Column::Size,
                Column::Exporter,
                Column::Name,
                Column::Procs,
                Column::Holders,
                Column::Importers
            ]
        );
        assert_eq!(
            parse_columns(View::Process, "pid, RSS,pid").unwrap(),
            [Column::Pid, Column::Rss]
        );
        let e = parse_columns(View::Exporter, "pid").unwrap_err();
        assert!(
            e.contains("--by exporter has no column `pid`")
                && e.contains("EXPORTER,BUFS,SIZE,PROCS"),
            "{e}"
        );
        assert!(parse_columns(View::User, ",")
            .unwrap_err()
            .contains("no column"));
        assert_eq!(
            reads_for(&parse_columns(View::Holder, "+user,cgroup").unwrap()),
            Reads {
                users: true,
                cgroups: true,
                ..Reads::default()
            }
        );
        assert_eq!(reads_for(&default_columns(View::Buffer)), Reads::default());
        // Every column a view has is named once, with a heading of its own.
        for view in [
            View::Buffer,
            View::Process,
            View::Exporter,
            View::Holder,
            View::User,
            View::Cgroup,
        ] {
            let names: Vec<&str> = columns(view).iter().map(|c| c.name()).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "{view}");
            assert!(!default_columns(view).is_empty());
        }
    }

    #[test]
    fn csv_round_trip() {
        let rows = [
            vec!["INO".to_string(), "HOLDERS".into(), "NAME".into()],
            vec![
                "5".into(),
                "app[1]:3,mem b[2]:4".into(),
                "say \"hi\"".into(),
            ],
            vec!["6".into(), "-".into(), " x\ny ".into()],
        ];
        let t = Table {
            columns: vec![("A".into(), Left), ("B".into(), Left), ("C".into(), Left)],
            rows: rows[1..].to_vec(),
        };
        let mut out = String::new();
        t.csv(false, &mut out);
        assert_eq!(
            out,
            "5,\"app[1]:3,mem b[2]:4\",\"say \"\"hi\"\"\"\r\n6,-,\" x\ny \"\r\n"
        );
        assert_eq!(parse_csv(&out).unwrap(), rows[1..].to_vec());
        assert_eq!(
            parse_csv("a,b\nc,\n").unwrap(),
            [vec!["a", "b"], vec!["c", ""]]
        );
        assert!(parse_csv("\"a").is_err());
        assert!(parse_csv("a\"b\n").is_err());
    }

    use crate::model::{Analysis, Changes, Count, Filter};
    use crate::raw::{Raw, RawFd, RawProcess};

    /// (fd, ino, size) of a process's dma-buf fds.
    type Fds<'a> = &'a [(i32, u64, u64)];

    fn walk(holds: &[(i32, &str, Fds)]) -> Raw {
        Raw {
            processes: holds
                .iter()
                .map(|(pid, comm, fds)| RawProcess {
                    pid: *pid,
                    comm: comm.to_string(),
                    fds: fds
                        .iter()
                        .map(|&(fd, ino, size)| RawFd {
                            fd,
                            link: "/dmabuf:".into(),
                            fdinfo: Some(format!(
                                "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t{ino}\nsize:\t{size}\ncount:\t1\nexp_name:\tsystem\n"
                            )),
                            stat: None,
                        })
                        .collect(),
                    ..RawProcess::default()
                })
                .collect(),
            read: holds.len(),
            ..Raw::default()
        }
    }

    #[test]
    fn totals_with_bounds_and_unheld() {
        let t = Totals {
            buffers: 3,
            size: 28 << 10,
            exact: false,
            processes: 2,
            fds: 4,
            mappings: 1,
            rss: 40 << 10,
            pss: 28 << 10,
            unheld: Some(Count {
                buffers: 1,
                size: 4096,
            }),
            system: Some(Count {
                buffers: 4,
                size: 32 << 10,
            }),
        };
        assert_eq!(
            totals_line(&t, Sizes { bytes: false }),
            "total: 3 buffers, >=28K, held by 2 processes through 4 fds and 1 mapping: Rss >=40K, \
             Pss >=28K; held by no process: 1 buffer, 4K; bufinfo: 4 buffers, 32K"
        );
        let plain = Totals {
            unheld: None,
            exact: true,
            ..t
        };
        assert_eq!(
            totals_line(&plain, Sizes { bytes: true }),
            "total: 3 buffers, 28672, held by 2 processes through 4 fds and 1 mapping: Rss 40960, \
             Pss 28672"
        );
    }

    #[test]
    fn a_watch_tick() {
        let before = walk(&[(10, "app", &[(3, 41, 8192), (4, 42, 4096)])]);
        let after = walk(&[
            (10, "app", &[(3, 41, 8192)]),
            (12, "cam", &[(3, 43, 16384)]),
        ]);
        let a = Analysis::new(&before).report(&Filter::default());
        let b = Analysis::new(&after).report(&Filter::default());
        let c = Changes::between(&a, &b);
        let text = render_changes(
            &c,
            "12:00:02",
            &default_columns(View::Buffer),
            Sizes { bytes: false },
        );
        assert_eq!(
            text,
            "12:00:02 1 buffer new, 1 gone, 2 processes changed: 2 buffers, 24K (+12K)\n\
             BUFFER INO SIZE EXPORTER NAME PROCS HOLDERS\n\
             new     43  16K system   -        1 cam[12]:3\n\
             gone    42   4K system   -        1 app[10]:4\n\
             PROCESS PID COMMAND   BUFS    FDS MAPS        RSS        PSS\n\
             changed  10 app     1 (-1) 1 (-1)    0   8K (-4K)   8K (-4K)\n\
             new      12 cam     1 (+1) 1 (+1)    0 16K (+16K) 16K (+16K)\n"
        );
        let quiet = render_changes(
            &Changes::between(&b, &b),
            "12:00:04",
            &default_columns(View::Buffer),
            Sizes { bytes: true },
        );
        assert_eq!(quiet, "12:00:04 no change: 2 buffers, 24576\n");
    }

    /// The scene lsdmabuf-vmtest captured, as a walk without --all shows it.
    fn scene() -> Report {
        let raw = Raw::from_capture(include_str!("../testdata/scene.capture")).unwrap();
        let plain = crate::scan::as_walked(&raw, Reads::default());
        Analysis::new(&plain).report(&Filter::default())
    }

    #[test]
    fn the_grid_of_buffers_by_processes() {
        let r = scene();
        let g = r.grid();
        assert_eq!(g.processes.len(), r.processes.len());
        assert_eq!(g.rows.len(), r.buffers.len());
        // Each row adds up to its buffer's size, each column to the
        // process's Pss, and all to the size of the buffers held.
        for (row, b) in g.rows.iter().zip(&r.buffers) {
            assert_eq!(
                row.pss.iter().flatten().sum::<u64>(),
                b.size,
                "ino {}",
                b.ino
            );
        }
        let pss: Vec<u64> = r.processes.iter().map(|p| p.pss).collect();
        assert_eq!(g.pss, pss);
        assert_eq!(g.pss.iter().sum::<u64>(), r.totals.size);
        // ino 1, 16K held by 766, 770 and 771: 5462, 5461, 5461.
        assert_eq!(
            g.rows[0].pss,
            [Some(5462), None, None, None, Some(5461), Some(5461)]
        );
        let layout = Layout::new(View::Grid, Sizes { bytes: true });
        let text = render(&r, &layout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 9 + 1 + 1, "{text}");
        assert!(
            lines[0]
                .split_whitespace()
                .take(4)
                .eq(["INO", "SIZE", "EXPORTER", "NAME"]),
            "{text}"
        );
        assert!(
            lines[0].ends_with("lsdmabuf-vmtest[770] lsdmabuf-vmtest[771]"),
            "{text}"
        );
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "1",
                "16384",
                "system",
                "scene-fork",
                "3",
                "5462",
                "-",
                "-",
                "-",
                "5461",
                "5461"
            ]
        );
        let total: Vec<&str> = lines[10].split_whitespace().collect();
        assert_eq!(
            total,
            ["PSS", "36182", "10240", "36864", "12288", "5461", "5461"]
        );
        assert!(lines[11].starts_with("total: 9 buffers"));
        // CSV: the same cells, no sums.
        let csv = parse_csv(&render_csv(&r, &layout)).unwrap();
        assert_eq!(csv.len(), 10);
        assert_eq!(csv[0][5], "lsdmabuf-vmtest[766]");
        assert_eq!(csv[1], cells);
        // JSON has it when the view is asked for.
        let mut with = r.clone();
        with.grid = Some(with.grid());
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["grid"]["rows"][0]["pss"][4], 5461);
        assert_eq!(json["buffers"][0]["holders"][0]["pss"], 5462);
        assert!(serde_json::to_value(&r).unwrap().get("grid").is_none());
    }

    #[test]
    fn each_holders_pss_in_the_holder_view() {
        let r = scene();
        let layout = Layout {
            columns: parse_columns(View::Holder, "pid,ino,pss").unwrap(),
            ..Layout::new(View::Holder, Sizes { bytes: true })
        };
        let csv = parse_csv(&render_csv(&r, &layout)).unwrap();
        assert_eq!(csv[0], ["PID", "INO", "PSS"]);
        assert_eq!(csv[1], ["766", "1", "5462"]);
        let sum: u64 = csv[1..]
            .iter()
            .map(|row| row[2].parse::<u64>().unwrap())
            .sum();
        assert_eq!(sum, r.totals.pss);
    }

    #[test]
    fn notes_tell_none_held_from_none_existing() {
        let mut r = Analysis::new(&walk(&[])).report(&Filter::default());
        let root = Asked::default();
        r.totals.system = Some(Count::default());
        assert_eq!(
            notes(&r, Some(true), root),
            ["no dma-buf exists: debugfs bufinfo lists none"]
        );
        r.totals.system = Some(Count {
            buffers: 2,
            size: 8192,
        });
        assert_eq!(
            notes(&r, Some(true), root),
            ["no process holds a dma-buf, but 2 dma-bufs of 8K exist (held by the kernel, a device \
              or an fd in flight): lsdmabuf --all lists them"]
        );
        // Filtered out is not the same as none.
        let filtered = Asked {
            filtered: true,
            ..root
        };
        assert!(notes(&r, Some(true), filtered).is_empty());
        // Unprivileged: no Pss advice when nothing is listed.
        r.totals.system = None;
        r.scan.unreadable_processes.insert("EACCES".into(), 3);
        r.scan.processes_read = 4;
        let n = notes(&r, Some(false), root);
        assert_eq!(n.len(), 2, "{n:?}");
        assert!(
            n[0].starts_with("3 processes of 7 could not be read: 3 EACCES"),
            "{n:?}"
        );
        assert!(!n[0].contains("Pss") && n[0].ends_with("Run as root to read every process"));
        assert!(
            n[1].starts_with("no process that can be read holds a dma-buf"),
            "{n:?}"
        );
    }
}
