//! Reliability under load, races, faults, signals and pid reuse (issue 9).
//!
//! Every test runs as root and, when the unprivileged user `ferrytest`
//! (`$FERRY_TEST_USER`) exists, rootless as that user, and ends by checking
//! that nothing leaked: no state dir, no host mount mentioning the bundle,
//! no process whose root is the bundle's rootfs, no cgroup
//! (`/sys/fs/cgroup/*/ferry/ID`), no zombie left with ferry or the test as
//! its parent.
//!
//! Sizes: `FERRY_STRESS_N` sequential create/start/delete cycles (100 by
//! default) and up to `FERRY_STRESS_PAR` containers at once (20); `make
//! stress` runs 1000 and 50. The time per container at each size is
//! printed (run with `--nocapture`, or set `FERRY_STRESS_REPORT=FILE` to
//! have the figures appended to FILE).
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// Print a figure and append it to `$FERRY_STRESS_REPORT` if set.
fn report(line: &str) {
    println!("{line}");
    if let Some(path) = std::env::var_os("FERRY_STRESS_REPORT")
        && let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean_ms(v: &[Duration]) -> f64 {
    v.iter().map(|d| ms(*d)).sum::<f64>() / v.len().max(1) as f64
}

fn modes() -> [Mode; 2] {
    [Mode::Root, Mode::Rootless]
}

// ---------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------

/// N create/start/delete cycles one after the other; the time per cycle
/// must stay flat and nothing may leak.
fn sequential(mode: Mode) {
    let Some(mut r) = Rig::new("seq", mode) else {
        return;
    };
    r.b.args(&["true"]);
    r.b.save();
    let n = env_usize("FERRY_STRESS_N", 100);
    let mut times = Vec::with_capacity(n);
    let all = Instant::now();
    for i in 0..n {
        let id = format!("{}-{i}", r.b.id);
        let t = Instant::now();
        r.create(&id);
        r.ok(&["start", &id]);
        r.ok(&["delete", "--force", &id]);
        times.push(t.elapsed());
        let left = r.b.state_entries();
        assert!(left.is_empty(), "cycle {i}: state left: {left:?}");
    }
    let total = all.elapsed();
    r.assert_no_leaks(&format!("after {n} sequential cycles"));
    let k = (n / 5).max(1);
    let (first, last) = (mean_ms(&times[..k]), mean_ms(&times[n - k..]));
    let tenth = (n / 10).max(1);
    let buckets: Vec<String> = times
        .chunks(tenth)
        .map(|c| format!("{:.1}", mean_ms(c)))
        .collect();
    report(&format!(
        "sequential {}: {n} cycles in {:.1} s, {:.2} ms per container \
         (first 20% {first:.2} ms, last 20% {last:.2} ms; per tenth: {})",
        mode.name(),
        total.as_secs_f64(),
        ms(total) / n as f64,
        buckets.join(" ")
    ));
    assert!(
        last <= 3.0 * first,
        "[{}] time per container grew: first 20% {first:.2} ms, last 20% {last:.2} ms",
        mode.name()
    );
}

#[test]
fn load_sequential_root() {
    sequential(Mode::Root);
}

#[test]
fn load_sequential_rootless() {
    sequential(Mode::Rootless);
}

/// Waves of containers created, started and deleted all at once (a
/// quarter, half and all of `FERRY_STRESS_PAR`).
fn parallel(mode: Mode) {
    let Some(mut r) = Rig::new("par", mode) else {
        return;
    };
    r.b.args(&["sleep", "60"]);
    r.b.save();
    let p = env_usize("FERRY_STRESS_PAR", 20);
    let mut sizes = vec![(p / 4).max(1), (p / 2).max(1), p];
    sizes.dedup();
    let mut per = Vec::new();
    for (wave, &size) in sizes.iter().enumerate() {
        let ids: Vec<String> = (0..size)
            .map(|i| format!("{}-{wave}-{i}", r.b.id))
            .collect();
        let all = |verb: &[&str]| {
            let t = Instant::now();
            let jobs: Vec<Job> = ids
                .iter()
                .map(|id| {
                    let mut a = verb.to_vec();
                    a.push(id);
                    r.spawn(&a)
                })
                .collect();
            for j in jobs {
                let o = j.wait(Duration::from_secs(60));
                assert!(o.success(), "wave of {size}:\n{}", o.describe());
            }
            t.elapsed()
        };
        let create = all(&["create", "--bundle", r.b.dir_str()]);
        let start = all(&["start"]);
        for id in &ids {
            assert_eq!(r.status(id), "running", "{id}");
        }
        let procs = procs_with_root(&r.b.rootfs());
        assert_eq!(procs.len(), size, "one process per container: {procs:?}");
        let delete = all(&["delete", "--force"]);
        r.assert_no_leaks(&format!("after a wave of {size} parallel containers"));
        let total = create + start + delete;
        let each = ms(total) / size as f64;
        per.push(each);
        report(&format!(
            "parallel {}: {size} containers at once, {each:.2} ms per container \
             (create {:.0} ms, start {:.0} ms, delete {:.0} ms for the wave)",
            mode.name(),
            ms(create),
            ms(start),
            ms(delete)
        ));
    }
    let (first, last) = (per[0], per[per.len() - 1]);
    assert!(
        last <= 3.0 * first,
        "[{}] time per container grew with the wave size: {per:?}",
        mode.name()
    );
}

#[test]
fn load_parallel_root() {
    parallel(Mode::Root);
}

#[test]
fn load_parallel_rootless() {
    parallel(Mode::Rootless);
}

/// ferry's own fds while it runs a container in the foreground, and the
/// container's: nothing of ferry's reaches it.
#[test]
fn fds_stay_few() {
    for mode in modes() {
        let Some(mut r) = Rig::new("fds", mode) else {
            continue;
        };
        r.b.sh("ls /proc/self/fd | tr '\\n' ' '; echo; echo ready; sleep 60");
        let id = r.b.id.clone();
        let run = r.spawn(&["run", "--bundle", r.b.dir_str(), &id]);
        assert!(
            wait_until(SHORT, || run.stdout_so_far().contains("ready")),
            "container did not start: {}",
            run.stdout_so_far()
        );
        // Less what ferry inherited from us (the harness's own fds).
        let inherited = inheritable_fds();
        let ferry_fds: Vec<i32> = fs::read_dir(format!("/proc/{}/fd", run.pid()))
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
            .filter(|fd| *fd <= 2 || !inherited.contains(fd))
            .collect();
        let inside = Bundle::fd_set(run.stdout_so_far().lines().next().unwrap_or(""));
        r.ok(&["kill", &id, "KILL"]);
        let o = run.wait(SHORT);
        assert_eq!(o.code(), 137, "{}", o.describe());
        report(&format!(
            "fds {}: foreground ferry run holds {} fds of its own {ferry_fds:?}; the container's shell sees {inside:?}",
            mode.name(),
            ferry_fds.len()
        ));
        // stdio, plus at most a couple of its own.
        assert!(ferry_fds.len() <= 5, "ferry run holds {ferry_fds:?}");
        // stdio and the fd `ls` opened on /proc/self/fd.
        assert!(
            inside.iter().all(|fd| *fd <= 3),
            "the container inherited fds: {inside:?}"
        );
        r.assert_no_leaks("after a foreground run");
    }
}

/// Our fds without close-on-exec (a child inherits them).
fn inheritable_fds() -> Vec<i32> {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .filter(|fd: &i32| {
            let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|f| f & libc::O_CLOEXEC as u32 == 0)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// concurrency
// ---------------------------------------------------------------------------

/// Two `create` of one id at once: exactly one wins, the other fails with
/// "already exists" and takes nothing of the winner's with it.
#[test]
fn create_same_id_race() {
    for mode in modes() {
        let Some(mut r) = Rig::new("sameid", mode) else {
            continue;
        };
        r.b.args(&["sleep", "60"]);
        for round in 0..4 {
            let id = format!("{}-{round}", r.b.id);
            let args = ["create", "--bundle", r.b.dir_str(), &id];
            let (a, b) = (r.spawn(&args), r.spawn(&args));
            let (a, b) = (a.wait(TIMEOUT), b.wait(TIMEOUT));
            assert_eq!(
                [&a, &b].iter().filter(|o| o.success()).count(),
                1,
                "exactly one create must win:\n{}\n{}",
                a.describe(),
                b.describe()
            );
            let loser = if a.success() { &b } else { &a };
            loser.assert_one_line_error(Some("already exists"));
            assert_eq!(r.status(&id), "created");
            r.ok(&["start", &id]);
            assert_eq!(r.status(&id), "running");
            r.ok(&["delete", "--force", &id]);
        }
        r.assert_no_leaks("after racing creates");
    }
}

/// `kill`, `state` and `delete --force` racing with the container's own
/// exit: delete always succeeds, kill succeeds or says the container is not
/// running (or gone), state gives a real status or says it is gone.
#[test]
fn kill_delete_state_race_with_exit() {
    for mode in modes() {
        let Some(mut r) = Rig::new("exitrace", mode) else {
            continue;
        };
        for round in 0..16u32 {
            // The container exits after 0..15 ms.
            let us = (round * 1000).to_string();
            r.b.args(&["usleep", &us]);
            let id = format!("{}-{round}", r.b.id);
            r.create(&id);
            r.ok(&["start", &id]);
            let kill = r.spawn(&["kill", &id, "KILL"]);
            let state = r.spawn(&["state", &id]);
            let delete = r.spawn(&["delete", "--force", &id]);
            let (kill, state, delete) = (
                kill.wait(TIMEOUT),
                state.wait(TIMEOUT),
                delete.wait(TIMEOUT),
            );
            assert!(delete.success(), "{}", delete.describe());
            if !kill.success() {
                kill.assert_one_line_error(None);
                assert!(
                    kill.stderr.contains("container not running")
                        || kill.stderr.contains("does not exist"),
                    "kill racing the exit:\n{}",
                    kill.describe()
                );
            }
            if state.success() {
                let v: Value = serde_json::from_str(&state.stdout)
                    .unwrap_or_else(|e| panic!("{e}:\n{}", state.describe()));
                assert!(
                    ["running", "stopped"].contains(&v["status"].as_str().unwrap_or("")),
                    "state racing the exit: {v}"
                );
            } else {
                state.assert_one_line_error(Some("does not exist"));
            }
        }
        r.assert_no_leaks("after kill/state/delete raced the exit");

        // Once it has exited: kill says so, plain delete works.
        r.b.args(&["true"]);
        let id = format!("{}-exited", r.b.id);
        r.create(&id);
        r.ok(&["start", &id]);
        assert!(
            wait_until(SHORT, || r.status(&id) == "stopped"),
            "container did not stop"
        );
        let o = r.ferry(&["kill", &id, "9"]);
        o.assert_one_line_error(Some("container not running"));
        // As runc: --all on a stopped container signals what is left, and succeeds.
        r.ok(&["kill", "--all", &id, "9"]);
        r.ok(&["delete", &id]);
        r.assert_no_leaks("after deleting an exited container");
    }
}

// ---------------------------------------------------------------------------
// faults
// ---------------------------------------------------------------------------

/// `ferry create` killed with SIGKILL after 0, 0.5, 1, … 30 ms: `delete
/// --force` then exits 0 and removes everything the create made.
#[test]
fn killed_create_is_removed_by_delete_force() {
    for mode in modes() {
        let Some(mut r) = Rig::new("killcreate", mode) else {
            continue;
        };
        r.b.args(&["sleep", "60"]);
        r.b.save();
        // What the killed create had got to: no dir, dir only, provisional
        // state without/with the init's pid, complete.
        let mut seen = std::collections::BTreeMap::<&str, u32>::new();
        for step in 0..=60u64 {
            let id = format!("{}-{step}", r.b.id);
            let mut job = r.spawn(&["create", "--bundle", r.b.dir_str(), &id]);
            std::thread::sleep(Duration::from_micros(step * 500));
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(job.pid(), libc::SIGKILL) };
            let _ = job.child.wait();
            let stage = match fs::read_to_string(r.state_json(&id)) {
                Ok(text) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    match (v["creating"].as_bool().unwrap_or(false), v["pid"].as_i64()) {
                        (false, _) => "complete",
                        (true, Some(0)) => "cgroup recorded",
                        (true, _) => "init recorded",
                    }
                }
                Err(_) if r.b.state_root.join(&id).exists() => "state dir only",
                Err(_) => "nothing",
            };
            *seen.entry(stage).or_default() += 1;
            let o = r
                .spawn(&["delete", "--force", &id])
                .wait(Duration::from_secs(15));
            assert!(
                o.success(),
                "delete --force after create was killed at {} us ({stage}):\n{}",
                step * 500,
                o.describe()
            );
            let left: Vec<String> =
                r.b.state_entries()
                    .into_iter()
                    .chain(cgroup_dirs(&id).iter().map(|d| d.display().to_string()))
                    .collect();
            assert!(
                left.is_empty(),
                "[{}] killed at {} us ({stage}): left {left:?}",
                mode.name(),
                step * 500
            );
            r.assert_no_leaks(&format!("create killed at {} us ({stage})", step * 500));
        }
        report(&format!(
            "killed create {}: stages hit {seen:?}",
            mode.name()
        ));
    }
}

/// A tmpfs mounted at `dir` with `opts`, owned by the rig's user.
fn mount_tmpfs(r: &Rig, dir: &Path, opts: &str) {
    fs::create_dir_all(dir).unwrap();
    let (uid, gid) = r.user.unwrap_or((0, 0));
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("{opts},uid={uid},gid={gid},mode=0700"))
        .arg("tmpfs")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs on {}", dir.display());
}

fn umount(dir: &Path) {
    let _ = Command::new("umount").arg("-l").arg(dir).status();
}

/// A read-only state root and a full one: `create` fails with a clear
/// one-line error and leaves nothing behind.
#[test]
fn read_only_and_full_state_root() {
    for mode in modes() {
        let Some(mut r) = Rig::new("badroot", mode) else {
            continue;
        };
        r.b.args(&["sleep", "60"]);
        r.b.save();

        let ro = r.b.path("ro-root");
        mount_tmpfs(&r, &ro, "ro,size=1m");
        let id = format!("{}-ro", r.b.id);
        let o = r
            .spawn_in(&ro, &["create", "--bundle", r.b.dir_str(), &id])
            .wait(TIMEOUT);
        umount(&ro);
        o.assert_one_line_error(Some("read-only file system"));
        report(&format!(
            "read-only state root {}: {}",
            mode.name(),
            o.stderr.trim()
        ));
        r.assert_no_leaks("after create on a read-only state root");

        let full = r.b.path("full-root");
        mount_tmpfs(&r, &full, "size=64k");
        let mut filler = fs::File::create(full.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        drop(filler);
        let id = format!("{}-full", r.b.id);
        let o = r
            .spawn_in(&full, &["create", "--bundle", r.b.dir_str(), &id])
            .wait(TIMEOUT);
        let entries: Vec<String> = fs::read_dir(&full)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        umount(&full);
        o.assert_one_line_error(Some("no space left on device"));
        report(&format!(
            "full state root {}: {}",
            mode.name(),
            o.stderr.trim()
        ));
        assert_eq!(entries, ["filler"], "a failed create left state behind");
        r.assert_no_leaks("after create on a full state root");
    }
}

/// The init dies (SIGKILL) between `create` and `start`: start says so,
/// state says stopped, delete removes it.
#[test]
fn init_dies_before_start() {
    for mode in modes() {
        let Some(mut r) = Rig::new("diebeforestart", mode) else {
            continue;
        };
        r.b.args(&["sleep", "60"]);
        let id = r.b.id.clone();
        r.create(&id);
        let pid = r.state(&id)["pid"].as_i64().unwrap() as i32;
        // SAFETY: kill(2) on the container's init.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(
            wait_until(SHORT, || !pid_alive(pid)),
            "init survived SIGKILL"
        );
        let o = r.ferry(&["start", &id]);
        o.assert_one_line_error(Some("stopped"));
        let st = r.state(&id);
        assert_eq!(st["status"], "stopped", "{st}");
        assert_eq!(st["pid"], 0, "{st}");
        r.ok(&["delete", &id]);
        r.assert_no_leaks("after deleting a container whose init died");
    }
}

// ---------------------------------------------------------------------------
// signals
// ---------------------------------------------------------------------------

/// SIGHUP, SIGINT and SIGTERM sent to a foreground `ferry run` reach the
/// container, whose traps print them; its exit status is ferry's.
#[test]
fn signals_reach_foreground_run() {
    for mode in modes() {
        let Some(mut r) = Rig::new("fgsig", mode) else {
            continue;
        };
        r.b.sh("trap 'echo got HUP' HUP; trap 'echo got INT' INT; \
             trap 'echo got TERM; exit 7' TERM; \
             echo ready; while :; do sleep 0.02; done");
        let id = r.b.id.clone();
        let run = r.spawn(&["run", "--bundle", r.b.dir_str(), &id]);
        assert!(
            wait_until(SHORT, || run.stdout_so_far().contains("ready")),
            "container did not start: {}",
            run.stdout_so_far()
        );
        for (sig, name) in [
            (libc::SIGHUP, "HUP"),
            (libc::SIGINT, "INT"),
            (libc::SIGTERM, "TERM"),
        ] {
            // SAFETY: kill(2) on our child, the foreground ferry.
            unsafe { libc::kill(run.pid(), sig) };
            let want = format!("got {name}");
            assert!(
                wait_until(SHORT, || run.stdout_so_far().contains(&want)),
                "[{}] SIG{name} did not reach the container: {:?}",
                mode.name(),
                run.stdout_so_far()
            );
        }
        let o = run.wait(SHORT);
        assert_eq!(o.code(), 7, "{}", o.describe());
        r.assert_no_leaks("after a foreground run ended by SIGTERM");
    }
}

/// A container without its own pid namespace (so the default action of a
/// signal applies to its process) killed by a signal: `ferry run` exits
/// with 128+N.
#[test]
fn signalled_container_exits_128_plus_n() {
    for mode in modes() {
        let Some(mut r) = Rig::new("sigexit", mode) else {
            continue;
        };
        r.b.remove_ns("pid");
        if mode == Mode::Rootless {
            // proc cannot be mounted without a pid namespace of our own:
            // bind the host's.
            let mounts: Vec<Value> =
                r.b.get("/mounts")
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| {
                        if m["destination"] == "/proc" {
                            json!({"destination": "/proc", "type": "bind", "source": "/proc",
                               "options": ["rbind", "nosuid", "noexec", "nodev"]})
                        } else {
                            m
                        }
                    })
                    .collect();
            r.b.set("/mounts", json!(mounts));
        }
        r.b.args(&["sleep", "60"]);
        for (sig, n) in [
            (libc::SIGHUP, 1),
            (libc::SIGINT, 2),
            (libc::SIGUSR1, 10),
            (libc::SIGTERM, 15),
            (libc::SIGKILL, 9),
        ] {
            let id = format!("{}-{n}", r.b.id);
            let run = r.spawn(&["run", "--bundle", r.b.dir_str(), &id]);
            assert!(
                wait_until(SHORT, || r
                    .ferry(&["state", &id])
                    .stdout
                    .contains("\"running\"")
                    && !procs_with_root(&r.b.rootfs()).is_empty()),
                "container {id} did not start"
            );
            if sig == libc::SIGKILL {
                r.ok(&["kill", &id, "KILL"]);
            } else {
                // SAFETY: kill(2) on our child, the foreground ferry.
                unsafe { libc::kill(run.pid(), sig) };
            }
            let o = run.wait(SHORT);
            assert_eq!(
                o.code(),
                128 + n,
                "[{}] signal {n}:\n{}",
                mode.name(),
                o.describe()
            );
        }
        r.assert_no_leaks("after signalled containers");
    }
}

/// A container that ignores SIGTERM survives `kill ID TERM` and dies of
/// `kill ID 9`.
#[test]
fn sigterm_ignoring_container_dies_of_kill_9() {
    for mode in modes() {
        let Some(mut r) = Rig::new("ignoreterm", mode) else {
            continue;
        };
        r.b.sh("trap '' TERM; echo ready; while :; do sleep 0.02; done");
        let id = r.b.id.clone();
        let mut run = r.spawn(&["run", "--bundle", r.b.dir_str(), &id]);
        assert!(
            wait_until(SHORT, || run.stdout_so_far().contains("ready")),
            "container did not start"
        );
        r.ok(&["kill", &id, "TERM"]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(run.running(), "SIGTERM killed a container that ignores it");
        assert_eq!(r.status(&id), "running");
        r.ok(&["kill", &id, "9"]);
        let o = run.wait(SHORT);
        assert_eq!(o.code(), 137, "{}", o.describe());
        r.assert_no_leaks("after kill 9");
    }
}

// ---------------------------------------------------------------------------
// pid reuse
// ---------------------------------------------------------------------------

/// A state.json whose pid now belongs to an unrelated process (same start
/// time recorded as before): the container reads as stopped and neither
/// `kill` nor `delete` signal that process.
#[test]
fn reused_pid_is_never_signalled() {
    for mode in modes() {
        let Some(mut r) = Rig::new("pidreuse", mode) else {
            continue;
        };
        r.b.args(&["sleep", "60"]);
        let id = r.b.id.clone();
        r.create(&id);
        r.ok(&["start", &id]);
        let pid = r.state(&id)["pid"].as_i64().unwrap() as i32;
        // SAFETY: kill(2) on the container's init.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(
            wait_until(SHORT, || !pid_alive(pid)),
            "init survived SIGKILL"
        );

        // An unrelated process of the same user takes the recorded pid.
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        r.as_user(&mut cmd);
        let mut sleeper = cmd.spawn().unwrap();
        let victim = sleeper.id() as i64;
        let path = r.state_json(&id);
        let mut st: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        st["pid"] = json!(victim);
        fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();

        let v = r.state(&id);
        assert_eq!(v["status"], "stopped", "{v}");
        assert_eq!(v["pid"], 0, "{v}");
        r.ferry(&["kill", &id, "KILL"])
            .assert_one_line_error(Some("container not running"));
        // --all signals only the container's own cgroup, never the reused pid.
        r.ok(&["kill", "--all", &id, "KILL"]);
        r.ok(&["delete", "--force", &id]);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            matches!(sleeper.try_wait(), Ok(None)),
            "[{}] ferry signalled the process that reused the pid",
            mode.name()
        );
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        r.assert_no_leaks("after a stale state with a reused pid");
    }
}
