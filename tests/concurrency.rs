//! Concurrent invocations against one --root.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(5);

#[test]
fn concurrent_create_same_id_exactly_one_wins() {
    require_root!();
    for round in 0..5 {
        let mut b = Bundle::new("raceid");
        b.args(&["sleep", "30"]);
        b.save();
        let args = ["create", "--bundle", b.dir_str(), &b.id];
        let p1 = b.spawn(&args);
        let p2 = b.spawn(&args);
        let o1 = p1.wait(Duration::from_secs(20));
        let o2 = p2.wait(Duration::from_secs(20));
        let wins = [&o1, &o2].iter().filter(|o| o.success()).count();
        assert_eq!(
            wins,
            1,
            "round {round}: exactly one create must succeed:\n{}\n{}",
            o1.describe(),
            o2.describe()
        );
        let loser = if o1.success() { &o2 } else { &o1 };
        loser.assert_clean_error(None);
        // the winner's container is intact and usable
        let st = b.state();
        assert_eq!(st["status"], "created", "round {round}: {st}");
        let pid = st["pid"].as_i64().unwrap() as i32;
        assert!(pid_alive(pid), "round {round}: winner's init {pid} is dead");
        assert!(
            wait_until(SHORT, || procs_with_root(&b.rootfs()) == vec![pid]),
            "round {round}: processes in rootfs {:?}, expected only {pid}",
            procs_with_root(&b.rootfs())
        );
        b.start();
        assert_eq!(b.status(), "running");
        b.run_ok(&["delete", "--force", &b.id]);
        b.assert_state_root_empty();
    }
}

#[test]
fn concurrent_creates_of_different_ids_in_one_root() {
    require_root!();
    let mut b = Bundle::new("raceroot");
    b.args(&["sleep", "30"]);
    b.save();
    let ids: Vec<String> = (0..8).map(|i| format!("{}-{i}", b.id)).collect();
    let procs: Vec<Proc> = ids
        .iter()
        .map(|id| b.spawn(&["create", "--bundle", b.dir_str(), id]))
        .collect();
    for p in procs {
        let o = p.wait(Duration::from_secs(30));
        assert!(o.success(), "{}", o.describe());
    }
    let o = b.run_ok(&["list", "--quiet"]);
    let mut listed: Vec<&str> = o.stdout.lines().collect();
    listed.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(listed, want);
    // start and delete them all concurrently too
    let starts: Vec<Proc> = ids.iter().map(|id| b.spawn(&["start", id])).collect();
    for p in starts {
        let o = p.wait(Duration::from_secs(20));
        assert!(o.success(), "{}", o.describe());
    }
    let dels: Vec<Proc> = ids
        .iter()
        .map(|id| b.spawn(&["delete", "--force", id]))
        .collect();
    for p in dels {
        let o = p.wait(Duration::from_secs(20));
        assert!(o.success(), "{}", o.describe());
    }
    b.assert_state_root_empty();
    assert!(wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()));
}

#[test]
fn concurrent_delete_and_state() {
    require_root!();
    let mut b = Bundle::new("racedel");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let d1 = b.spawn(&["delete", "--force", &b.id]);
    let d2 = b.spawn(&["delete", "--force", &b.id]);
    let s = b.spawn(&["state", &b.id]);
    for p in [d1, d2] {
        let o = p.wait(Duration::from_secs(20));
        assert!(
            o.success(),
            "concurrent delete --force must both succeed:\n{}",
            o.describe()
        );
    }
    let o = s.wait(Duration::from_secs(20));
    // state either saw the container or reported it missing, never garbage
    if o.success() {
        let v: Value =
            serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.describe()));
        assert_eq!(v["id"], b.id.as_str());
    } else {
        o.assert_clean_error(Some("does not exist"));
    }
    b.assert_state_root_empty();
}
