//! `ferry run`: create and start; in the foreground, wait for the
//! container and exit with its status.

use anyhow::Result;

use crate::cli::{GlobalOpts, RunOpts};
use crate::container;

pub fn run(g: &GlobalOpts, o: &RunOpts) -> Result<i32> {
    let options = super::create_options(g, &o.create);
    let bundle = o.create.bundle.as_deref();
    Ok(container::run(
        &super::store(g)?,
        bundle,
        options,
        o.detach,
        o.keep,
    )?)
}
