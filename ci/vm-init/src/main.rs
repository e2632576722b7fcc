// SPDX-License-Identifier: GPL-2.0
//! `/init` of the test VM.
//!
//! The kernel hands everything after `--` on its command line to init as
//! arguments. vm-init mounts devtmpfs, proc, sysfs and debugfs, runs those
//! arguments as commands (an argument `;;` separates one command from the
//! next), and hands the result back to the host in two ways:
//!
//! - a line `vm-init: exit status N` on the console, which the host reads as
//!   the guest's verdict (N is 0 when every command exited 0, otherwise the
//!   status of the first one that did not);
//! - the byte `min(N, 127)` written to QEMU's isa-debug-exit port 0xf4, which
//!   makes QEMU exit at once with status `2 * byte + 1`.
//!
//! The commands' standard output and error go to `/dev/ttyS1`, the VM's
//! second serial port, so the host keeps them apart from the kernel log.
//! Each command's output there is framed by two lines of vm-init's own, TAP
//! comments, so that the host can tell which command printed which TAP
//! stream:
//!
//! ```text
//! # vm-init: command 1: validator --count 1000
//! ...
//! # vm-init: command 1 exited 0
//! # vm-init: command 2: dmabuf-stress run
//! ...
//! # vm-init: command 2 exited signal 9
//! ```
//!
//! The closing line follows whatever the command wrote last: after output
//! that does not end in a newline (a command killed mid-line) it runs into
//! that line, and the host looks for it there too.
//!
//! Without `/dev/ttyS1` the commands' output would have nowhere to go: when
//! it cannot be opened, or takes no output (a VM without a second serial
//! port has the device, but every write to it fails with `EIO`), vm-init
//! says so on the console and reports status 125 without running the
//! commands, or any further one.
//!
//! The statuses vm-init itself gives: 125 when it could not set the VM up
//! (mounts, open-file limit, the output port), 126 when no command was given
//! or one could not be started, 127 when a command's program could not be
//! executed (said on the output port), 128 + K when signal K killed a
//! command.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::termios::tcdrain;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdout, execve, fork, ForkResult, Pid};

/// The isa-debug-exit I/O port (`-device isa-debug-exit,iobase=0xf4`).
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Separates two commands on the kernel command line.
const COMMAND_SEPARATOR: &str = ";;";

/// Where the commands' output goes: the VM's second serial port.
const OUTPUT_TTY: &str = "/dev/ttyS1";

/// The status vm-init reports when it could not set the VM up.
const SETUP_FAILED: i32 = 125;

/// The status vm-init reports when it could not start a command.
const CANNOT_START: i32 = 126;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match setup() {
        Ok(()) => run_commands(&args),
        Err(e) => {
            console(&format!("vm-init: setup failed: {e}"));
            SETUP_FAILED
        }
    };
    console(&format!("vm-init: exit status {status}"));
    power_off(status);
}

/// Mounts what the commands expect and lifts the open-file limit.
fn setup() -> Result<(), String> {
    let mounts = [
        ("devtmpfs", "/dev"),
        ("proc", "/proc"),
        ("sysfs", "/sys"),
        ("debugfs", "/sys/kernel/debug"),
        ("tmpfs", "/tmp"),
    ];
    for (fstype, dir) in mounts {
        fs::create_dir_all(dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
        match mount(
            Some(fstype),
            dir,
            Some(fstype),
            MsFlags::empty(),
            None::<&str>,
        ) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => return Err(format!("mount {fstype} on {dir}: {e}")),
        }
    }
    // Validators hold many thousands of dma-buf fds; root may raise the hard
    // limit up to fs.nr_open.
    let nr_open = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    setrlimit(Resource::RLIMIT_NOFILE, nr_open, nr_open)
        .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {nr_open}): {e}"))?;
    Ok(())
}

/// How a command ended.
#[derive(Clone, Copy)]
enum Status {
    Exited(i32),
    Signaled(i32),
}

impl Status {
    /// The status as a shell gives it: 128 + the signal number for a signal.
    fn code(self) -> i32 {
        match self {
            Status::Exited(code) => code,
            Status::Signaled(sig) => 128 + sig,
        }
    }
}

impl std::fmt::Display for Status {
    /// `0`, `1`, ... or `signal 9`: what the output port's last line of a
    /// command says.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(code) => write!(f, "{code}"),
            Status::Signaled(sig) => write!(f, "signal {sig}"),
        }
    }
}

/// Runs each command in turn; the result is the first non-zero status.
fn run_commands(args: &[String]) -> i32 {
    let commands: Vec<&[String]> = args
        .split(|a| a == COMMAND_SEPARATOR)
        .filter(|c| !c.is_empty())
        .collect();
    if commands.is_empty() {
        console("vm-init: no command given after `--` on the kernel command line");
        return CANNOT_START;
    }
    let output = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(OUTPUT_TTY)
    {
        Ok(f) => f,
        Err(e) => {
            console(&format!(
                "vm-init: cannot open {OUTPUT_TTY} ({e}): the commands' output has nowhere to go"
            ));
            return SETUP_FAILED;
        }
    };
    let mut result = 0;
    for (i, command) in commands.iter().enumerate() {
        let n = i + 1;
        // One line, whatever the arguments hold.
        let line = command.join(" ").replace(['\n', '\r'], " ");
        // The first write also tells whether the port takes output at all:
        // without a UART behind it, /dev/ttyS1 opens but every write fails.
        if !output_line(&output, &format!("# vm-init: command {n}: {line}")) {
            return SETUP_FAILED;
        }
        console(&format!("vm-init: command {n}: {line}"));
        let status = run(command, &output);
        if !output_line(&output, &format!("# vm-init: command {n} exited {status}")) {
            return SETUP_FAILED;
        }
        match status {
            Status::Exited(code) => {
                console(&format!("vm-init: command {n} exited with status {code}"))
            }
            Status::Signaled(sig) => console(&format!(
                "vm-init: command {n} exited with status {} (killed by signal {sig})",
                status.code()
            )),
        }
        if result == 0 {
            result = status.code();
        }
    }
    // Until the UART has sent the commands' output: see console().
    let _ = tcdrain(&output);
    result
}

/// Writes one line of vm-init's own to the commands' output port; says so
/// on the console and returns false when the port does not take it.
fn output_line(mut output: &File, line: &str) -> bool {
    match output.write_all(format!("{line}\n").as_bytes()) {
        Ok(()) => true,
        Err(e) => {
            console(&format!(
                "vm-init: cannot write to {OUTPUT_TTY} ({e}): the commands' output has nowhere to go"
            ));
            false
        }
    }
}

/// Runs one command, its standard output and error on `output`, and returns
/// how it ended.
fn run(command: &[String], output: &File) -> Status {
    let path = if command[0].contains('/') {
        command[0].clone()
    } else {
        format!("/bin/{}", command[0])
    };
    let (Ok(path), Ok(argv)) = (
        CString::new(path.as_str()),
        command
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<Vec<_>, _>>(),
    ) else {
        console("vm-init: a command argument holds a NUL byte");
        return Status::Exited(CANNOT_START);
    };
    let env = [c"PATH=/bin", c"HOME=/", c"RUST_BACKTRACE=1"];
    // SAFETY: init is single-threaded, so the child may run any code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = dup2_stdout(output);
            let _ = dup2_stderr(output);
            let e = execve(&path, &argv, &env).unwrap_err();
            eprintln!(
                "vm-init: cannot run {}: {e}",
                OsStr::from_bytes(path.as_bytes()).to_string_lossy()
            );
            std::process::exit(127);
        }
        Ok(ForkResult::Parent { child }) => wait_for(child),
        Err(e) => {
            console(&format!("vm-init: fork: {e}"));
            Status::Exited(CANNOT_START)
        }
    }
}

/// Waits for `child`, reaping any orphan that init inherits meanwhile.
fn wait_for(child: Pid) -> Status {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return Status::Exited(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                return Status::Signaled(sig as i32)
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                console(&format!("vm-init: waitpid: {e}"));
                return Status::Exited(CANNOT_START);
            }
        }
    }
}

/// Writes one line to the console, starting on a fresh line so that kernel
/// messages printed meanwhile cannot run into it.
fn console(line: &str) {
    let msg = format!("\n{line}\n");
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console")
    {
        Ok(mut c) => {
            let _ = c.write_all(msg.as_bytes());
            // Until the UART has sent it: power_off() stops QEMU at once,
            // and what the tty still held would never reach the host.
            let _ = tcdrain(&c);
        }
        Err(_) => {
            let _ = std::io::stdout().write_all(msg.as_bytes());
        }
    }
}

/// Hands `status` to QEMU and stops the VM; never returns.
fn power_off(status: i32) -> ! {
    nix::unistd::sync();
    let byte = status.clamp(0, 127) as u8;
    // SAFETY: ioperm() only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(DEBUG_EXIT_PORT.into(), 1, 1) } == 0 {
        // SAFETY: the port was granted above; writing isa-debug-exit's port
        // makes QEMU exit, and touches no memory.
        unsafe {
            std::arch::asm!("out dx, al", in("dx") DEBUG_EXIT_PORT, in("al") byte,
                            options(nomem, nostack, preserves_flags));
        }
    }
    // No isa-debug-exit device: reboot, which -no-reboot turns into an exit.
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    loop {
        std::thread::park();
    }
}
