//! `ferry list`.

use anyhow::Result;

use crate::cli::ListFormat;
use crate::container::Store;

pub fn list(store: &Store, format: ListFormat, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        if let Ok(Some(state)) = store.peek(&id) {
            rows.push(state.to_json(state.status(&store.container_path(&id))));
        }
    }
    if quiet {
        rows.iter()
            .for_each(|r| println!("{}", r["id"].as_str().unwrap_or_default()));
        return Ok(());
    }
    if format == ListFormat::Json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    let cols = ["id", "pid", "status", "bundle", "created", "owner"];
    let mut table: Vec<Vec<String>> = vec![cols.iter().map(|c| c.to_uppercase()).collect()];
    for r in &rows {
        table.push(
            cols.iter()
                .map(|c| {
                    r[*c]
                        .as_str()
                        .map_or_else(|| r[*c].to_string(), str::to_owned)
                })
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cols.len())
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
    Ok(())
}
