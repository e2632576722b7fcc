// SPDX-License-Identifier: GPL-2.0
//! Parsers for the kernel's text interfaces that describe dma-bufs.
//!
//! Every parser takes the whole text of one file as `&str` and returns a
//! typed value or a [`ParseError`] that names the offending line. They accept
//! what the kernel prints today (6.12) and ignore fields they do not know, so
//! that a newer kernel adding a field does not break them.

use std::fmt;

pub mod bufinfo;
pub mod fdinfo;
pub mod maps;
pub mod meminfo;
pub mod slabinfo;
pub mod zoneinfo;

/// Why a text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was being parsed (`fdinfo`, `maps`, ...).
    pub what: &'static str,
    /// The 1-based line number, when the error is about one line.
    pub line: Option<usize>,
    /// What was wrong.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, line: Option<usize>, reason: impl Into<String>) -> Self {
        Self {
            what,
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{} line {n}: {}", self.what, self.reason),
            None => write!(f, "{}: {}", self.what, self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a decimal number, naming `field` on failure.
pub(crate) fn dec<T: std::str::FromStr>(
    what: &'static str,
    line: usize,
    field: &str,
    s: &str,
) -> Result<T, ParseError> {
    s.trim().parse().map_err(|_| {
        ParseError::new(
            what,
            Some(line),
            format!("{field} `{s}` is not a decimal number"),
        )
    })
}

/// Parses a hexadecimal number without `0x`, naming `field` on failure.
pub(crate) fn hex(
    what: &'static str,
    line: usize,
    field: &str,
    s: &str,
) -> Result<u64, ParseError> {
    u64::from_str_radix(s.trim(), 16).map_err(|_| {
        ParseError::new(
            what,
            Some(line),
            format!("{field} `{s}` is not a hexadecimal number"),
        )
    })
}
