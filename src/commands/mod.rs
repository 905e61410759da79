//! One file per subcommand; `dispatch` maps the parsed command line to them.

mod build;
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod image;
mod image_dist;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use anyhow::Result;

use crate::cli::CreateOpts;
use crate::cli::{Cli, Command, GlobalOpts};
use crate::container::{CreateOptions, StateStore, default_root};

/// The version banner (`--version`), as engines print it.
pub const VERSION: &str = concat!(
    "ferry version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("FERRY_COMMIT"),
    "\nspec: ",
    "1.2.1"
);

/// The exit code for a failed command: 255 for exec, as runc (engines tell
/// a runtime failure from the process's own status that way).
pub fn failure_code(cli: &Cli) -> i32 {
    if matches!(cli.command, Some(Command::Exec(_))) {
        255
    } else {
        1
    }
}

/// The one-line message for a failed command: the error and its causes,
/// joined by ": ", leaving out a cause whose text the message already ends
/// with (errors that print their source, as most do, would say it twice).
pub fn error_message(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// Run the command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let g = &cli.global;
    log::debug!(
        "ferry {}: {:?}",
        env!("CARGO_PKG_VERSION"),
        std::env::args().skip(1).collect::<Vec<_>>()
    );
    let Some(command) = cli.command else {
        if g.version {
            println!("{VERSION}");
            return Ok(0);
        }
        anyhow::bail!("no command given; see ferry --help");
    };
    match command {
        Command::Create(o) => create::create(g, &o).map(|()| 0),
        Command::Start { id } => start::start(&store(g)?, &id).map(|()| 0),
        Command::State { id } => state::state(&store(g)?, &id).map(|()| 0),
        Command::Kill { all, id, signal } => kill::kill(&store(g)?, &id, &signal, all).map(|()| 0),
        Command::Delete { force, id } => delete::delete(&store(g)?, &id, force).map(|()| 0),
        Command::List { format, quiet } => list::list(&store(g)?, format, quiet).map(|()| 0),
        Command::Run(o) => run::run(g, &o),
        Command::Exec(o) => exec::exec(g, &o),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps::ps(&store(g)?, &id, format, &ps_args).map(|()| 0),
        Command::Pause { id } => pause::pause(&store(g)?, &id).map(|()| 0),
        Command::Resume { id } => pause::resume(&store(g)?, &id).map(|()| 0),
        Command::Update(o) => update::update(&store(g)?, &o).map(|()| 0),
        Command::Events {
            stats,
            interval,
            id,
        } => events::events(&store(g)?, &id, stats, &interval).map(|()| 0),
        Command::Features => features::features().map(|()| 0),
        Command::Image(o) => image::image(g, &o),
        Command::Checkpoint(o) => checkpoint::checkpoint(&store(g)?, &o).map(|()| 0),
        Command::Restore(o) => checkpoint::restore(&store(g)?, &o),
        Command::Spec { bundle, rootless } => spec::spec(bundle.as_deref(), rootless).map(|()| 0),
        Command::Build(o) => build::build(g, &o).map(|()| 0),
    }
}

/// The state store named by `--root` (or the default root).
pub fn store(g: &GlobalOpts) -> Result<StateStore> {
    let root = g.root.clone().unwrap_or_else(default_root);
    Ok(StateStore::open(&root)?)
}

/// The container options the command line gives `create` and `run`.
fn create_options<'a>(g: &GlobalOpts, o: &'a CreateOpts) -> CreateOptions<'a> {
    CreateOptions {
        id: &o.id,
        console_socket: o.console_socket.as_deref(),
        pid_file: o.pid_file.as_deref(),
        preserve_fds: o.preserve_fds,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        systemd_cgroup: g.systemd_cgroup,
        ..CreateOptions::default()
    }
}
