//! `ferry create`: set a container up and leave its init blocked before exec.

use anyhow::Result;

use crate::cli::{CreateOpts, GlobalOpts};
use crate::container::{Bundle, Container};

/// Create the container.
pub fn create(g: &GlobalOpts, o: &CreateOpts) -> Result<()> {
    let bundle = Bundle::load(o.bundle.as_deref())?;
    Container::create(&super::store(g)?, bundle, super::create_options(g, o))?;
    Ok(())
}
