//! `ferry image tag|push|save|load`: images to and from registries and
//! archives.

use anyhow::{Result, bail};

use crate::cli::{ImageCommand, SaveFormat};
use crate::image::Store;
use crate::image::archive::{self, Format};
use crate::image::import::ImportOptions;
use crate::image::push::{PushOptions, Sent, push};
use crate::image::store::check_name;
use crate::userns;

pub fn image_dist(store: &Store, cmd: &ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Tag { name, new_name } => tag(store, name, new_name),
        ImageCommand::Push {
            insecure,
            cert_dir,
            creds,
            chunk_size,
            name,
            destination,
        } => {
            let o = PushOptions {
                insecure: *insecure,
                cert_dir: cert_dir.clone(),
                creds: creds.clone(),
                chunk_size: *chunk_size,
            };
            let dest = destination.as_deref().unwrap_or(name);
            mapped(|| {
                let p = push(store, name, dest, &o)?;
                let count = |s: Sent| p.blobs.iter().filter(|(_, x)| *x == s).count();
                println!(
                    "{} {} ({} blobs uploaded, {} mounted, {} already there)",
                    p.reference,
                    p.digest,
                    count(Sent::Uploaded),
                    count(Sent::Mounted),
                    count(Sent::Existed)
                );
                Ok(())
            })
        }
        ImageCommand::Save {
            output,
            format,
            name,
        } => {
            let f = match format {
                SaveFormat::OciArchive => Format::OciArchive,
                SaveFormat::DockerArchive => Format::DockerArchive,
            };
            mapped(|| Ok(archive::save(store, name, output, f)?))
        }
        ImageCommand::Load { input, name, file } => {
            if input.is_some() && file.is_some() {
                bail!("give the archive once: as an argument or with --input");
            }
            let Some(file) = input.as_ref().or(file.as_ref()) else {
                bail!("name the archive to load: ferry image load FILE");
            };
            let o = ImportOptions {
                name: name.clone(),
                ..ImportOptions::default()
            };
            mapped(|| {
                let rec = archive::load(store, file, &o)?;
                println!("{} {}", rec.name, rec.config);
                Ok(())
            })
        }
        _ => unreachable!("image_dist handles tag, push, save and load"),
    }
}

/// `ferry image tag NAME NEWNAME`: a second record for the same image.
fn tag(store: &Store, name: &str, new_name: &str) -> Result<()> {
    check_name(new_name)?;
    let _lock = store.lock(false)?;
    let mut rec = store.find(name)?;
    rec.name = new_name.to_string();
    store.save_image(&rec)?;
    Ok(())
}

/// Run `work` with the caller's subordinate ids when rootless (layer files
/// belong to them: packing one reads them).
fn mapped(work: impl FnOnce() -> Result<()>) -> Result<()> {
    Ok(userns::run_mapped(|| {
        work().map_err(|e| super::error_message(&e))
    })?)
}
