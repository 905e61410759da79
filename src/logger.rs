//! The `log` backend: plain or JSON lines to `--log FILE` (to stderr
//! without one), warnings and errors also to stderr. `--debug` turns on the
//! debug records (text `level=debug`, JSON `"level":"debug"`).
//!
//! Engines read the log file back: containerd takes the last error line and
//! podman parses the whole file as one JSON object, so a failure writes
//! exactly one error line (see [`fatal`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::cli::{GlobalOpts, LogFormat};
use crate::timefmt;

struct Logger {
    file: Option<Mutex<File>>,
    format: LogFormat,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Install the logger described by the global flags.
pub fn init(opts: &GlobalOpts) -> std::io::Result<()> {
    let file = match &opts.log {
        Some(path) => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("open log file {}: {e}", path.display()))
                })?,
        )),
        None => None,
    };
    let logger = LOGGER.get_or_init(|| Logger {
        file,
        format: opts.log_format,
    });
    let _ = log::set_logger(logger);
    log::set_max_level(if opts.debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    });
    Ok(())
}

impl Logger {
    /// One line in the `--log-format`: runc's (logrus's) text or JSON.
    fn format_line(&self, level: Level, msg: &str) -> String {
        let level = level.as_str().to_ascii_lowercase();
        let time = timefmt::now_rfc3339();
        match self.format {
            LogFormat::Json => {
                let obj = serde_json::json!({ "level": level, "msg": msg, "time": time });
                format!("{obj}\n")
            }
            LogFormat::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
        }
    }

    fn write_file(&self, level: Level, msg: &str) {
        let Some(file) = &self.file else { return };
        let line = self.format_line(level, msg);
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Write to stderr, ignoring failure (a closed stderr must not panic).
fn to_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    /// As runc: every record goes to the `--log` file, or without one to
    /// stderr, in the `--log-format`; warnings and errors also reach
    /// stderr as a plain `ferry: warn: ...` line for the human reading it.
    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        let level = record.level();
        if self.file.is_some() {
            self.write_file(level, &msg);
        } else if level > Level::Warn {
            to_stderr(&self.format_line(level, &msg));
        }
        if level <= Level::Warn {
            to_stderr(&format!(
                "ferry: {}: {msg}\n",
                level.as_str().to_ascii_lowercase()
            ));
        }
    }

    fn flush(&self) {}
}

/// Report the error that ends this invocation: one line in the log file and
/// the same plain sentence on stderr.
pub fn fatal(msg: &str) {
    if let Some(logger) = LOGGER.get() {
        logger.write_file(Level::Error, msg);
    }
    eprintln!("ferry: {msg}");
}
