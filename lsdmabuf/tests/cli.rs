// SPDX-License-Identifier: GPL-2.0
//! The `lsdmabuf` binary on captures: its exit status, what it says on
//! stderr, and the JSON error object, as a user sees them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const SCENE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/scene.capture");

/// `lsdmabuf ARGS`, `stdin` given on its stdin.
fn lsdmabuf(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lsdmabuf"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_capture_on_stdin_is_shown() {
    let scene = std::fs::read_to_string(SCENE).unwrap();
    let out = lsdmabuf(&["--load", "-"], &scene);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("total: 9 buffers, 104K"));
}

#[test]
fn a_capture_cut_short_is_status_2_and_says_so() {
    let scene = std::fs::read_to_string(SCENE).unwrap();
    let first_100: String = scene.lines().take(100).map(|l| format!("{l}\n")).collect();
    for cut in [
        first_100.as_str(),
        "lsdmabuf capture 3\n",
        "lsdmabuf capture 2\n",
    ] {
        let out = lsdmabuf(&["--load", "-"], cut);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("cut short"),
            "{}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_pid_is_judged_alike_live_and_loaded() {
    let out = lsdmabuf(&["--load", SCENE, "-p", "99999"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--pid 99999: no process of the capture"));
    let out = lsdmabuf(&["--load", SCENE, "-p", "766"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn json_errors_are_an_object_on_stdout() {
    let out = lsdmabuf(&["--load", "/nonexistent/capture", "-J"], "");
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["status"], 2);
    assert!(v["error"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("--load: reading /nonexistent/capture"));
    assert!(text(&out.stderr).contains("--load: reading /nonexistent/capture"));
    // Nothing matched: the report, and the error beside it.
    let out = lsdmabuf(&["--load", SCENE, "-J", "-e", "nosuch"], "");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["buffers"], serde_json::json!([]));
    assert_eq!(v["error"]["what"], "nothing_matched");
    assert!(text(&out.stderr).contains("no dma-buf matches --exporter nosuch"));
}

#[test]
fn watch_intervals_that_are_not_numbers() {
    for bad in ["inf", "nan"] {
        let out = lsdmabuf(&["--watch", bad], "");
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(
            err.contains("not a number of seconds") && !err.contains("too short"),
            "{err}"
        );
    }
}
