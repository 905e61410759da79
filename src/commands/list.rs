//! `ferry list`.

use anyhow::Result;

use crate::cli::ListFormat;
use crate::container::{Container, StateDocument, StateStore};

pub fn list(store: &StateStore, format: ListFormat, quiet: bool) -> Result<()> {
    let containers = Container::list(store)?;
    let rows = containers
        .iter()
        .map(Container::document)
        .collect::<Result<Vec<StateDocument>, _>>()?;
    if quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    print_table(&rows);
    Ok(())
}

/// runc's table: ID, PID, STATUS, BUNDLE, CREATED, OWNER.
fn print_table(rows: &[StateDocument]) {
    let mut table: Vec<Vec<String>> = vec![
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .iter()
            .map(|c| c.to_string())
            .collect(),
    ];
    for r in rows {
        table.push(vec![
            r.id.to_string(),
            r.pid.to_string(),
            r.status.to_string(),
            r.bundle.display().to_string(),
            r.created.to_string(),
            r.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| table.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}
