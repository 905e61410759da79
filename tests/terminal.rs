//! process.terminal: pty allocation and --console-socket.
#[macro_use]
mod common;

use common::*;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Read from the pty master until `done` matches or the deadline passes.
fn read_pty_until(master: OwnedFd, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break, // EIO once the slave side is closed
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(chunk) => {
                out.extend(chunk);
                if done(&String::from_utf8_lossy(&out)) {
                    break;
                }
            }
            Err(_) => break,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Create `b` with a console socket, start it, and read its terminal
/// until the process prints `done-marker`.
fn run_on_console(b: &Bundle) -> String {
    let sock = b.path("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver =
        std::thread::spawn(move || receive_console_fd(listener, Duration::from_secs(15)));
    b.create(&["--console-socket", sock.to_str().unwrap()]);
    let master = receiver.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    b.start();
    read_pty_until(master, Duration::from_secs(10), |s| {
        s.contains("done-marker")
    })
}

#[test]
fn console_socket_receives_pty_master() {
    require_root!();
    let mut b = Bundle::new("consolesock");
    b.set("/process/terminal", json!(true));
    b.set("/process/consoleSize", json!({"height": 30, "width": 100}));
    b.sh("tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo isatty; stty size; echo done-marker");
    let out = run_on_console(&b);
    assert!(
        out.contains("/dev/pts/0"),
        "tty should be /dev/pts/0: {out:?}"
    );
    assert!(out.contains("isatty"), "stdio is not a terminal: {out:?}");
    assert!(out.contains("30 100"), "consoleSize not applied: {out:?}");
    assert!(
        out.contains("done-marker\r\n"),
        "output did not pass through a tty line discipline: {out:?}"
    );
    b.wait_status("stopped", Duration::from_secs(5));
}

#[test]
fn terminal_create_without_console_socket_fails() {
    require_root!();
    let mut b = Bundle::new("noconsolesock");
    b.set("/process/terminal", json!(true));
    b.args(&["sleep", "30"]);
    let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    o.assert_one_line_error(Some("console"));
    b.assert_state_root_empty();
}

#[test]
fn console_socket_without_terminal_fails() {
    require_root!();
    let mut b = Bundle::new("sockwithoutterm");
    b.args(&["sleep", "30"]);
    let sock = b.path("console.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    let o = b.ferry(&[
        "create",
        "--bundle",
        b.dir_str(),
        "--console-socket",
        sock.to_str().unwrap(),
        &b.id,
    ]);
    o.assert_one_line_error(Some("console"));
    b.assert_state_root_empty();
}

#[test]
fn foreground_run_with_terminal_proxies_output() {
    require_root!();
    let mut b = Bundle::new("fgterminal");
    b.set("/process/terminal", json!(true));
    b.sh("[ -t 1 ] && echo isatty; exit 4");
    let o = b.run(&[]);
    assert_eq!(o.code(), 4, "{}", o.describe());
    assert!(o.stdout.contains("isatty"), "{}", o.describe());
}

#[test]
fn pty_belongs_to_the_process_user() {
    require_root!();
    // runc: the pty of a non-root process is owned by its uid, group tty (5).
    let mut b = Bundle::new("ptyowner");
    b.set("/process/terminal", json!(true));
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.sh("stat -c 'owner=%u:%g' $(tty); echo done-marker");
    let out = run_on_console(&b);
    assert!(out.contains("owner=1000:5"), "pty owner: {out:?}");
}

#[test]
fn foreground_exec_with_tty_bridges_the_terminal() {
    require_root!();
    let mut b = Bundle::new("exectty");
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let o = b.ferry(&[
        "exec",
        "-t",
        &b.id,
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo isatty; stat -c 'owner=%u' $(tty); exit 5",
    ]);
    assert_eq!(o.code(), 5, "{}", o.describe());
    assert!(o.stdout.contains("isatty"), "{}", o.describe());
    assert!(o.stdout.contains("owner=1000"), "{}", o.describe());
}
