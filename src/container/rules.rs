//! Which operation may run in which status: the one table of the
//! lifecycle's rules, and the refusal each breach gets.

use super::Status;

/// What a caller asks of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `state` and `list`: a container is visible once `create` is done.
    Show,
    /// Release the init.
    Start,
    /// Signal the init (and maybe the rest).
    Kill,
    /// `kill --all`, or SIGKILL of a container without its own pid
    /// namespace: also sweeps a stopped container's cgroup.
    KillAll,
    /// Remove a stopped (or not yet started) container.
    Delete,
    /// `delete --force`: anything, even what a `create` killed half-way left.
    ForceDelete,
    Pause,
    Resume,
    Exec,
    /// `exec --ignore-paused`.
    ExecPaused,
    /// `ps`: a stopped container has no processes.
    Processes,
    /// `events` and `events --stats`.
    Events,
    Update,
    Checkpoint,
}

use Status::{Created, Creating, Paused, Running, Stopped};

impl Op {
    /// The statuses in which the operation may run.
    pub const fn allowed(self) -> &'static [Status] {
        match self {
            Op::Show | Op::Processes | Op::KillAll => &[Created, Running, Paused, Stopped],
            Op::Start => &[Created],
            Op::Kill | Op::Events | Op::Update | Op::ExecPaused => &[Created, Running, Paused],
            Op::Delete => &[Created, Stopped],
            Op::ForceDelete => &[Creating, Created, Running, Paused, Stopped],
            Op::Pause | Op::Exec => &[Created, Running],
            Op::Resume => &[Paused],
            Op::Checkpoint => &[Running, Paused],
        }
    }

    /// Whether the operation may run in `status`.
    pub fn allows(self, status: Status) -> bool {
        self.allowed().contains(&status)
    }

    /// The sentence refusing the operation on container `id` in `status`
    /// (one the table does not allow; a container still being created
    /// reads as not existing, as in runc).
    pub fn refusal(self, id: &str, status: Status) -> String {
        match (self, status) {
            (_, Creating) => format!("container {id} does not exist"),
            (Op::Start, Stopped) => format!("cannot start container {id}: it has stopped"),
            (Op::Start, _) => format!("cannot start container {id}: it is already {status}"),
            (Op::Kill, _) => format!("cannot kill container {id}: container not running"),
            (Op::Delete, _) => {
                format!("cannot delete container {id} that is not stopped: {status}")
            }
            (Op::Pause, Paused) => format!("container {id} is already paused"),
            (Op::Resume, _) => format!("container {id} is not paused"),
            (Op::Exec | Op::ExecPaused, Stopped) => "cannot exec in a stopped container".into(),
            (Op::Exec, _) => {
                "cannot exec in a paused container (use --ignore-paused to override)".into()
            }
            (Op::Checkpoint, _) => {
                format!("cannot checkpoint container {id}: container not running")
            }
            _ => format!("container {id} is not running"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Op; 14] = [
        Op::Show,
        Op::Start,
        Op::Kill,
        Op::KillAll,
        Op::Delete,
        Op::ForceDelete,
        Op::Pause,
        Op::Resume,
        Op::Exec,
        Op::ExecPaused,
        Op::Processes,
        Op::Events,
        Op::Update,
        Op::Checkpoint,
    ];

    #[test]
    fn a_container_being_created_does_not_exist_but_for_force_delete() {
        for op in ALL {
            assert_eq!(op.allows(Creating), op == Op::ForceDelete, "{op:?}");
            if op != Op::ForceDelete {
                assert_eq!(op.refusal("c", Creating), "container c does not exist");
            }
        }
    }

    #[test]
    fn refusals_keep_runcs_words() {
        assert_eq!(
            Op::Start.refusal("c", Running),
            "cannot start container c: it is already running"
        );
        assert_eq!(
            Op::Kill.refusal("c", Stopped),
            "cannot kill container c: container not running"
        );
        assert_eq!(
            Op::Delete.refusal("c", Paused),
            "cannot delete container c that is not stopped: paused"
        );
        assert_eq!(
            Op::Update.refusal("c", Stopped),
            "container c is not running"
        );
        assert!(Op::Exec.refusal("c", Paused).contains("--ignore-paused"));
    }
}
