use super::StoreError;

/// Longest container id accepted (containerd and podman use 64 hex digits).
const MAX_ID_LEN: usize = 1024;

/// Check that `id` is safe to use as a directory name under the state root.
pub fn validate_id(id: &str) -> Result<(), StoreError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+');
    if id.is_empty() || id.len() > MAX_ID_LEN || id == "." || id == ".." || !id.chars().all(ok_char)
    {
        return Err(StoreError::InvalidId(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_id;

    #[test]
    fn accepts_engine_ids() {
        for id in ["mybox", "a1b2c3d4e5f6", "k8s_pod-1.2+x", &"f".repeat(64)] {
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn rejects_path_tricks() {
        for id in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            "a b",
            "x\0",
            &"a".repeat(2000),
        ] {
            assert!(validate_id(id).is_err(), "{id:?} accepted");
        }
    }
}
