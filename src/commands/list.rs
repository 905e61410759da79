//! `ferry list`.

use anyhow::Result;

use crate::cli::ListFormat;
use crate::container::{StateDocument, Status, Store};

pub fn list(store: &Store, format: ListFormat, quiet: bool) -> Result<()> {
    let mut states = Vec::new();
    for id in store.ids()? {
        if let Ok(Some(state)) = store.peek(&id) {
            let status = state.status(&store.container_path(&id));
            // Invisible until `create` is done, as for `state`.
            if status != Status::Creating {
                states.push((state, status));
            }
        }
    }
    let rows: Vec<StateDocument> = states.iter().map(|(s, st)| s.document(*st)).collect();
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
