//! Progress of pulls and pushes: on a terminal (stderr), one status line
//! rewritten at most ten times a second with the bytes done in total and in
//! each layer still in flight, then one line per layer; nothing otherwise.

use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::history::human;

/// One blob being moved.
struct Item {
    name: String,
    size: u64,
    done: u64,
    /// How it ended (`pushed`, `exists`, `mounted`...), once it has.
    state: Option<&'static str>,
}

/// The progress of one pull or push.
pub struct Progress {
    verb: &'static str,
    on: bool,
    items: Mutex<Vec<Item>>,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    /// Shown when stderr is a terminal.
    pub fn new(verb: &'static str) -> Progress {
        Progress::with(verb, std::io::stderr().is_terminal())
    }

    pub fn with(verb: &'static str, on: bool) -> Progress {
        Progress {
            verb,
            on,
            items: Mutex::new(Vec::new()),
            last: Mutex::new(None),
        }
    }

    /// A new blob of `size` bytes (0: unknown); its index.
    pub fn add(&self, name: &str, size: u64) -> usize {
        let mut items = self.items.lock().expect("progress lock");
        items.push(Item {
            name: name.to_string(),
            size,
            done: 0,
            state: None,
        });
        items.len() - 1
    }

    /// `n` more bytes of blob `i`.
    pub fn advance(&self, i: usize, n: u64) {
        if !self.on {
            return;
        }
        if let Some(it) = self.items.lock().expect("progress lock").get_mut(i) {
            it.done += n;
        }
        self.draw(false);
    }

    /// Blob `i` is done: `state` says how.
    pub fn end(&self, i: usize, state: &'static str) {
        if let Some(it) = self.items.lock().expect("progress lock").get_mut(i) {
            it.state = Some(state);
            it.done = it.done.max(it.size);
        }
        self.draw(true);
    }

    fn draw(&self, force: bool) {
        if !self.on {
            return;
        }
        {
            let mut last = self.last.lock().expect("progress lock");
            let now = Instant::now();
            if !force && last.is_some_and(|t| now - t < Duration::from_millis(100)) {
                return;
            }
            *last = Some(now);
        }
        let line = self.status_line();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// `pushing 12.0MB / 40.0MB | 1a2b3c4d5e6f 5.0MB/20.0MB ...`
    fn status_line(&self) -> String {
        let items = self.items.lock().expect("progress lock");
        let done: u64 = items.iter().map(|i| i.done).sum();
        let total: u64 = items.iter().map(|i| i.size.max(i.done)).sum();
        let mut line = format!("{} {} / {}", self.verb, human(done), human(total));
        for it in items
            .iter()
            .filter(|i| i.state.is_none() && i.done > 0)
            .take(3)
        {
            line.push_str(&format!(
                " | {} {}/{}",
                it.name,
                human(it.done),
                human(it.size)
            ));
        }
        line
    }

    /// Clear the status line and print one line per blob.
    pub fn finish(&self) {
        if !self.on {
            return;
        }
        let items = self.items.lock().expect("progress lock");
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        for it in items.iter() {
            let _ = writeln!(
                err,
                "{} {:>10}  {}",
                it.name,
                human(it.size.max(it.done)),
                it.state.unwrap_or("done")
            );
        }
    }
}

/// A reader that reports what goes through it to a [`Progress`].
pub struct Counting<'a, R> {
    pub inner: R,
    pub progress: &'a Progress,
    pub index: usize,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(self.index, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_counts_bytes() {
        let p = Progress::with("pushing", true);
        let a = p.add("aaaaaaaaaaaa", 2048);
        let b = p.add("bbbbbbbbbbbb", 1024);
        if let Some(it) = p.items.lock().unwrap().get_mut(a) {
            it.done = 1024;
        }
        let line = p.status_line();
        assert!(line.starts_with("pushing 1.0kB / 3.1kB"), "{line}");
        assert!(line.contains("aaaaaaaaaaaa 1.0kB/2.0kB"), "{line}");
        assert!(!line.contains("bbbbbbbbbbbb"), "{line}");
        let _ = b;
    }
}
