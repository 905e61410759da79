//! The parsed form of a Dockerfile: what `dockerfile` produces and the
//! builder consumes. Words are kept as written (before `$VAR`
//! substitution): the builder substitutes them with the ARG/ENV values in
//! scope at each step, as Docker does, and only for the instructions Docker
//! substitutes in.

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\\`, or `` ` `` after `# escape=``): what
    /// `subst` needs to read the words below.
    pub escape: char,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines, and in a
    /// stage once re-declared there by a bare `ARG NAME`.
    pub global_args: Vec<ArgDecl>,
    /// Stages in file order.
    pub stages: Vec<Stage>,
}

impl Default for Dockerfile {
    fn default() -> Self {
        Dockerfile {
            escape: '\\',
            global_args: Vec::new(),
            stages: Vec::new(),
        }
    }
}

/// One `FROM` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The base as written: an image name, `scratch`, or an earlier
    /// stage's name or index (after substitution with global args).
    pub base: String,
    /// `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// `--platform=...`, if given.
    pub platform: Option<String>,
    /// Line of the `FROM` (1-based).
    pub line: usize,
    /// The instructions of the stage.
    pub steps: Vec<Step>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Line where the instruction starts (1-based).
    pub line: usize,
    /// The instruction as written, continuations joined, for history's
    /// `created_by` and the progress line (`RUN npm install`). Heredoc
    /// bodies are not in it (they are in the instruction's `heredocs`).
    pub text: String,
    /// What it does.
    pub instruction: Instruction,
}

/// The shell form (`CMD echo hi`) or the exec form (`CMD ["echo", "hi"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// `ARG NAME[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// A here-document (`<<EOF`, `<<-EOF`, `<<"EOF"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, which is also the file name for `COPY <<NAME`.
    pub name: String,
    /// The body, without the closing delimiter line (leading tabs removed
    /// for `<<-`); every line ends with `\n`.
    pub content: String,
    /// False when the delimiter was quoted: no variable expansion.
    pub expand: bool,
}

/// `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `type=secret,id=ID[,target=PATH][,required][,mode=..][,uid=..][,gid=..]`;
    /// the default target is `/run/secrets/ID`.
    Secret {
        id: String,
        target: Option<String>,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `type=cache,target=PATH[,id=ID][,sharing=shared|private|locked][,mode=..][,uid=..][,gid=..]`.
    Cache {
        target: String,
        id: Option<String>,
        sharing: String,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `type=bind[,source=PATH][,target=PATH][,from=STAGE][,rw]`.
    Bind {
        source: String,
        target: String,
        from: Option<String>,
        rw: bool,
    },
    /// `type=tmpfs,target=PATH[,size=BYTES]`.
    Tmpfs { target: String, size: Option<u64> },
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    pub mounts: Vec<RunMount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// Here-documents: for `RUN <<EOF` the first one is the script.
    pub heredocs: Vec<Heredoc>,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Sources as written (globs allowed); a heredoc source is `<<NAME`
    /// and its content is in `heredocs`.
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=STAGE|IMAGE` (COPY only).
    pub from: Option<String>,
    /// `--chown=USER[:GROUP]`.
    pub chown: Option<String>,
    /// `--chmod=MODE` (octal).
    pub chmod: Option<String>,
    /// `--link`: accepted, copies the same way.
    pub link: bool,
    /// `--exclude=PATTERN`s.
    pub exclude: Vec<String>,
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [--interval=..] [--timeout=..] [--start-period=..]
    /// [--start-interval=..] [--retries=N] CMD ...`; durations in
    /// nanoseconds as the image config stores them.
    Check {
        command: Command,
        interval: Option<u64>,
        timeout: Option<u64>,
        start_period: Option<u64>,
        start_interval: Option<u64>,
        retries: Option<u32>,
    },
}

/// Every instruction ferry builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Copy(Copy),
    Add(Copy),
    /// `ENV K=V ...` (or the legacy `ENV K V`).
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    /// Ports as written (`80`, `53/udp`, `$PORT`).
    Expose(Vec<String>),
    Entrypoint(Command),
    Cmd(Command),
    Volume(Vec<String>),
    StopSignal(String),
    /// `SHELL ["executable", "param"]` (exec form only).
    Shell(Vec<String>),
    Healthcheck(Healthcheck),
    /// `ONBUILD INSTRUCTION`: recorded in the config, not run.
    Onbuild(String),
    /// `MAINTAINER name` (deprecated): recorded as the author.
    Maintainer(String),
}

/// A Dockerfile that cannot be parsed: `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}
