//! "Files that look like secrets": what `ferry build` warns about at the
//! end of a build for every file a layer ships (`.env`, private keys,
//! `id_rsa`, `.npmrc` with a token, ...).
//!
//! [`looks_like_secret`] decides from the path, and for the names where
//! the name alone is not enough (`*.pem`, `*.key`, `.npmrc`, `.pypirc`,
//! `.docker/config.json`, `.netrc`, `.git-credentials`) from the first
//! [`HEAD_BYTES`] of the file, which it asks for only then: a public
//! certificate in `cert.pem` or an `.npmrc` that only names a registry is
//! not a secret. Files with other names are never read.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// How much of a file [`looks_like_secret`] needs to see.
pub const HEAD_BYTES: usize = 8192;

/// Why a file looks like a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `.env`, `.env.production`, ...
    EnvFile,
    /// `id_rsa`, `id_ed25519`, ... (not `.pub`).
    SshPrivateKey,
    /// A PEM/OpenSSH/PGP/PuTTY private key in a `*.pem`, `*.key`, ... file.
    PrivateKey,
    /// `*.p12`, `*.pfx`, `*.jks`, `*.keystore`.
    KeyStore,
    /// `.npmrc` with `_authToken`, `_auth` or `_password`.
    NpmToken,
    /// `.pypirc` with a password.
    PypiPassword,
    /// `.git-credentials` with a URL holding a password.
    GitCredentials,
    /// `.aws/credentials`.
    AwsCredentials,
    /// `.docker/config.json` with registry `auths` credentials.
    DockerAuth,
    /// `.netrc` with a password.
    Netrc,
    /// `.pgpass`.
    PgPass,
    /// A cloud service-account key file (GCP's JSON with a `private_key`).
    CloudKey,
    /// `.kube/config` with client keys, tokens or passwords.
    KubeConfig,
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::EnvFile => "an environment file (.env)",
            SecretKind::SshPrivateKey => "an SSH private key",
            SecretKind::PrivateKey => "a private key",
            SecretKind::KeyStore => "a key store (PKCS#12/JKS)",
            SecretKind::NpmToken => "an .npmrc with an auth token",
            SecretKind::PypiPassword => "a .pypirc with a password",
            SecretKind::GitCredentials => "git credentials",
            SecretKind::AwsCredentials => "AWS credentials",
            SecretKind::DockerAuth => "a Docker config with registry credentials",
            SecretKind::Netrc => "a .netrc with a password",
            SecretKind::PgPass => "a PostgreSQL password file (.pgpass)",
            SecretKind::CloudKey => "a cloud service-account key",
            SecretKind::KubeConfig => "a kubeconfig with credentials",
        })
    }
}

/// Whether the regular file at `path` (in a layer, `/`-separated, with or
/// without a leading `/`) looks like a secret. `head` returns the first
/// [`HEAD_BYTES`] of the file; it is called only when the name needs the
/// content to decide, and `None` (unreadable) means "not a secret" there.
pub fn looks_like_secret(path: &str, head: impl FnOnce() -> Option<Vec<u8>>) -> Option<SecretKind> {
    let path = path.trim_end_matches('/');
    let name = path.rsplit('/').next().unwrap_or(path);
    if let Some(kind) = by_name(path, name) {
        return Some(kind);
    }
    let (check, kind) = content_check(path, name)?;
    let data = head()?;
    let text = String::from_utf8_lossy(&data[..data.len().min(HEAD_BYTES)]);
    check(&text).then_some(kind)
}

/// Secrets recognised by their name alone.
fn by_name(path: &str, name: &str) -> Option<SecretKind> {
    let lower = name.to_ascii_lowercase();
    if is_env_file(&lower) {
        return Some(SecretKind::EnvFile);
    }
    const SSH_KEYS: &[&str] = &[
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
    ];
    if SSH_KEYS.contains(&name) {
        return Some(SecretKind::SshPrivateKey);
    }
    if [".p12", ".pfx", ".jks", ".keystore"]
        .iter()
        .any(|ext| lower.ends_with(ext) && lower.len() > ext.len())
    {
        return Some(SecretKind::KeyStore);
    }
    if ends_with_components(path, &[".aws", "credentials"]) {
        return Some(SecretKind::AwsCredentials);
    }
    if name == ".pgpass" {
        return Some(SecretKind::PgPass);
    }
    None
}

/// `.env` and `.env.<anything>` but the templates people commit
/// (`.env.example`, `.env.sample`, `.env.template`, `.env.dist`).
fn is_env_file(lower: &str) -> bool {
    match lower.strip_prefix(".env") {
        Some("") => true,
        Some(rest) => {
            rest.starts_with('.')
                && !["example", "sample", "template", "dist", "defaults"]
                    .iter()
                    .any(|t| rest.contains(t))
        }
        None => false,
    }
}

/// A content test for the file names that need one.
type Check = fn(&str) -> bool;

/// The content test for `name`, and what a match means, if its name makes
/// it a candidate.
fn content_check(path: &str, name: &str) -> Option<(Check, SecretKind)> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        ".npmrc" => (npmrc_has_token, SecretKind::NpmToken),
        ".pypirc" => (pypirc_has_password, SecretKind::PypiPassword),
        ".git-credentials" => (git_credentials_have_password, SecretKind::GitCredentials),
        ".netrc" | "_netrc" => (netrc_has_password, SecretKind::Netrc),
        "config.json" if ends_with_components(path, &[".docker", "config.json"]) => {
            (docker_config_has_auth, SecretKind::DockerAuth)
        }
        "config" if ends_with_components(path, &[".kube", "config"]) => {
            (kubeconfig_has_credentials, SecretKind::KubeConfig)
        }
        _ if [".pem", ".key", ".p8", ".pk8", ".ppk", ".asc", ".gpg"]
            .iter()
            .any(|ext| lower.ends_with(ext)) =>
        {
            (has_private_key, SecretKind::PrivateKey)
        }
        _ if lower.ends_with(".json")
            && [
                "service-account",
                "service_account",
                "serviceaccount",
                "credentials",
                "key",
            ]
            .iter()
            .any(|w| lower.contains(w)) =>
        {
            (json_has_private_key, SecretKind::CloudKey)
        }
        _ if in_ssh_dir(path) && !is_public_ssh_file(&lower) => {
            (has_private_key, SecretKind::SshPrivateKey)
        }
        _ => return None,
    })
}

/// Whether `path` is in a `.ssh` directory.
fn in_ssh_dir(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    parts.len() >= 2 && parts[parts.len() - 2] == ".ssh"
}

/// The files of `.ssh` that hold no secret.
fn is_public_ssh_file(lower: &str) -> bool {
    lower.ends_with(".pub")
        || matches!(
            lower,
            "known_hosts" | "known_hosts.old" | "authorized_keys" | "authorized_keys2" | "config"
        )
}

/// A JSON key file: `"private_key"` holding a PEM private key (with
/// `\n` escapes, so not [`has_private_key`]'s line test).
fn json_has_private_key(text: &str) -> bool {
    text.contains("\"private_key\"") && text.contains("PRIVATE KEY-----")
}

/// A kubeconfig user with embedded credentials.
fn kubeconfig_has_credentials(text: &str) -> bool {
    assignments(text).any(|(k, v)| {
        matches!(
            k.trim_start_matches("- "),
            "client-key-data" | "token" | "password"
        ) && literal_value(v)
    })
}

/// Whether the last components of `path` are `tail`.
fn ends_with_components(path: &str, tail: &[&str]) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    parts.len() >= tail.len() && parts[parts.len() - tail.len()..] == *tail
}

/// A PEM `PRIVATE KEY` block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS#8),
/// a PGP private key block or a PuTTY key.
fn has_private_key(text: &str) -> bool {
    text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----")
        || text.contains("PuTTY-User-Key-File-")
        || text.match_indices("-----BEGIN ").any(|(i, _)| {
            let rest = &text[i + "-----BEGIN ".len()..];
            let line = rest.split('\n').next().unwrap_or("");
            line.trim_end().ends_with("PRIVATE KEY-----")
        })
}

/// `key = value` lines (`#`/`;` comments skipped), keys lower-cased.
fn assignments(text: &str) -> impl Iterator<Item = (String, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            return None;
        }
        let (k, v) = line.split_once(['=', ':'])?;
        Some((k.trim().to_ascii_lowercase(), v.trim()))
    })
}

/// A literal value (not empty, not an `${ENV}` reference filled at run
/// time).
fn literal_value(v: &str) -> bool {
    let v = v.trim_matches(['"', '\'']);
    !v.is_empty() && !v.starts_with("${")
}

/// `_authToken=`, `_auth=`, `_password=` (also scoped:
/// `//registry/:_authToken=`) with a literal value.
fn npmrc_has_token(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            return false;
        }
        let Some((k, v)) = line.split_once('=') else {
            return false;
        };
        let key = k.trim().rsplit(':').next().unwrap_or("");
        matches!(key, "_authToken" | "_auth" | "_password") && literal_value(v.trim())
    })
}

/// `password = ...` with a literal value.
fn pypirc_has_password(text: &str) -> bool {
    assignments(text).any(|(k, v)| k == "password" && literal_value(v))
}

/// A line `scheme://user:password@host`.
fn git_credentials_have_password(text: &str) -> bool {
    text.lines().any(|line| {
        line.split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// A `password` token followed by a value.
fn netrc_has_password(text: &str) -> bool {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "password" && words.next().is_some() {
            return true;
        }
    }
    false
}

/// An `"auths"` object with a non-empty `"auth"` or `"identitytoken"`
/// (credential helpers alone keep nothing in the file).
fn docker_config_has_auth(text: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        // Longer than HEAD_BYTES or not JSON: fall back to the text.
        return text.contains("\"auths\"")
            && ["\"auth\"", "\"identitytoken\""]
                .iter()
                .any(|k| text.contains(k));
    };
    let Some(auths) = value.get("auths").and_then(|a| a.as_object()) else {
        return false;
    };
    auths.values().any(|entry| {
        ["auth", "identitytoken", "password"].iter().any(|k| {
            entry
                .get(k)
                .and_then(|v| v.as_str())
                .is_some_and(|s| !s.is_empty())
        })
    })
}

/// The first [`HEAD_BYTES`] of a regular file, without following a
/// symbolic link in the last component and without blocking on a fifo
/// (layer contents are written by the build's RUN steps). The directories
/// on the way must not be symbolic links: pass paths found by walking the
/// layer with `lstat`, after the step's container is gone. `None` when it
/// is not a readable regular file.
pub fn read_head(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::with_capacity(HEAD_BYTES);
    file.take(HEAD_BYTES as u64).read_to_end(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_KEY: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----\n";
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIDdz...\n-----END CERTIFICATE-----\n";

    fn check(path: &str, content: &str) -> Option<SecretKind> {
        looks_like_secret(path, || Some(content.as_bytes().to_vec()))
    }

    /// A path decided by name only: reading would be a bug.
    fn by_name_only(path: &str) -> Option<SecretKind> {
        looks_like_secret(path, || panic!("{path} should not be read"))
    }

    #[test]
    fn env_files() {
        assert_eq!(by_name_only("app/.env"), Some(SecretKind::EnvFile));
        assert_eq!(
            by_name_only("/srv/.env.production"),
            Some(SecretKind::EnvFile)
        );
        assert_eq!(by_name_only(".env.local"), Some(SecretKind::EnvFile));
        assert_eq!(by_name_only("app/.env.example"), None);
        assert_eq!(by_name_only(".env.sample"), None);
        assert_eq!(by_name_only(".envrc"), None);
        assert_eq!(by_name_only("app/env"), None);
        assert_eq!(
            by_name_only("usr/lib/python3/site-packages/dotenv/main.py"),
            None
        );
    }

    #[test]
    fn ssh_keys_by_name() {
        assert_eq!(
            by_name_only("root/.ssh/id_rsa"),
            Some(SecretKind::SshPrivateKey)
        );
        assert_eq!(
            by_name_only("home/u/.ssh/id_ed25519"),
            Some(SecretKind::SshPrivateKey)
        );
        assert_eq!(by_name_only("root/.ssh/id_rsa.pub"), None);
        assert_eq!(by_name_only("root/.ssh/known_hosts"), None);
    }

    #[test]
    fn pem_and_key_by_content() {
        assert_eq!(
            check("etc/ssl/private/server.key", RSA_KEY),
            Some(SecretKind::PrivateKey)
        );
        assert_eq!(check("app/tls.pem", RSA_KEY), Some(SecretKind::PrivateKey));
        let pkcs8 = "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n";
        assert_eq!(check("k.pem", pkcs8), Some(SecretKind::PrivateKey));
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n";
        assert_eq!(check("deploy.key", openssh), Some(SecretKind::PrivateKey));
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMII\n";
        assert_eq!(check("x.pem", enc), Some(SecretKind::PrivateKey));
        let bundle = format!("{CERT}{RSA_KEY}");
        assert_eq!(check("bundle.pem", &bundle), Some(SecretKind::PrivateKey));
    }

    #[test]
    fn public_material_is_not_a_secret() {
        assert_eq!(check("etc/ssl/certs/ca.pem", CERT), None);
        let pubkey = "-----BEGIN PUBLIC KEY-----\nMII\n-----END PUBLIC KEY-----\n";
        assert_eq!(check("signing.key", pubkey), None);
        let pgp_pub = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQ\n";
        assert_eq!(check("usr/share/keyrings/repo.asc", pgp_pub), None);
        assert_eq!(check("x.pem", ""), None);
        // unreadable: not reported
        assert_eq!(looks_like_secret("x.pem", || None), None);
    }

    #[test]
    fn other_names_are_not_read() {
        assert_eq!(by_name_only("app/main.js"), None);
        assert_eq!(by_name_only("etc/ssl/certs/ca.crt"), None);
        assert_eq!(by_name_only("app/config.json"), None);
    }

    #[test]
    fn pgp_and_putty_keys() {
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQ\n";
        assert_eq!(check("secret.asc", pgp), Some(SecretKind::PrivateKey));
        let putty = "PuTTY-User-Key-File-3: ssh-ed25519\n";
        assert_eq!(check("me.ppk", putty), Some(SecretKind::PrivateKey));
    }

    #[test]
    fn key_stores() {
        assert_eq!(by_name_only("certs/client.p12"), Some(SecretKind::KeyStore));
        assert_eq!(by_name_only("client.PFX"), Some(SecretKind::KeyStore));
        assert_eq!(by_name_only("app/keystore.jks"), Some(SecretKind::KeyStore));
        assert_eq!(by_name_only(".p12"), None);
    }

    #[test]
    fn npmrc() {
        let tok =
            "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_abc123\n";
        assert_eq!(check("root/.npmrc", tok), Some(SecretKind::NpmToken));
        assert_eq!(
            check(".npmrc", "_auth = dXNlcjpwYXNz\n"),
            Some(SecretKind::NpmToken)
        );
        let env_ref = "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n";
        assert_eq!(check(".npmrc", env_ref), None);
        assert_eq!(
            check(".npmrc", "registry=https://r.example/\nsave-exact=true\n"),
            None
        );
        assert_eq!(check(".npmrc", "# _authToken=old\n"), None);
    }

    #[test]
    fn pypirc() {
        let with = "[pypi]\nusername = __token__\npassword = pypi-AgEI\n";
        assert_eq!(check("root/.pypirc", with), Some(SecretKind::PypiPassword));
        let without = "[distutils]\nindex-servers = pypi\n[pypi]\nusername = me\n";
        assert_eq!(check(".pypirc", without), None);
    }

    #[test]
    fn git_credentials() {
        assert_eq!(
            check("root/.git-credentials", "https://user:ghp_x@github.com\n"),
            Some(SecretKind::GitCredentials)
        );
        assert_eq!(check(".git-credentials", ""), None);
    }

    #[test]
    fn aws_and_pgpass() {
        assert_eq!(
            by_name_only("root/.aws/credentials"),
            Some(SecretKind::AwsCredentials)
        );
        assert_eq!(by_name_only("app/credentials"), None);
        assert_eq!(by_name_only("root/.pgpass"), Some(SecretKind::PgPass));
    }

    #[test]
    fn docker_config() {
        let with = r#"{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}"#;
        assert_eq!(
            check("root/.docker/config.json", with),
            Some(SecretKind::DockerAuth)
        );
        let helpers = r#"{"auths":{"registry.example":{}},"credsStore":"pass"}"#;
        assert_eq!(check("root/.docker/config.json", helpers), None);
        assert_eq!(check("root/.docker/config.json", r#"{"auths":{}}"#), None);
        // not under .docker: not read at all
        assert_eq!(by_name_only("app/config.json"), None);
        // truncated JSON: decided from the text
        let truncated = r#"{"auths":{"r":{"auth":"abc"#;
        assert_eq!(
            check(".docker/config.json", truncated),
            Some(SecretKind::DockerAuth)
        );
    }

    #[test]
    fn netrc() {
        let with = "machine api.example.com\n  login me\n  password s3cret\n";
        assert_eq!(check("root/.netrc", with), Some(SecretKind::Netrc));
        assert_eq!(check(".netrc", "machine x login me\n"), None);
    }

    #[test]
    fn cloud_key_json() {
        let sa = r#"{"type": "service_account", "project_id": "p", "private_key_id": "1", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}"#;
        assert_eq!(
            check("app/service-account.json", sa),
            Some(SecretKind::CloudKey)
        );
        assert_eq!(check("gcp-key.json", sa), Some(SecretKind::CloudKey));
        assert_eq!(check("app/credentials.json", r#"{"client_id": "x"}"#), None);
        assert_eq!(by_name_only("app/package.json"), None);
        assert_eq!(by_name_only("tsconfig.json"), None);
    }

    #[test]
    fn kubeconfig() {
        let with = "apiVersion: v1\nusers:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTg==\n";
        assert_eq!(
            check("root/.kube/config", with),
            Some(SecretKind::KubeConfig)
        );
        let token = "users:\n- name: ci\n  user:\n    token: eyJhbGciOi\n";
        assert_eq!(
            check("home/u/.kube/config", token),
            Some(SecretKind::KubeConfig)
        );
        let exec = "users:\n- name: eks\n  user:\n    exec:\n      command: aws\n";
        assert_eq!(check("root/.kube/config", exec), None);
        assert_eq!(by_name_only("etc/app/config"), None);
    }

    #[test]
    fn custom_named_keys_in_ssh_dir() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n";
        assert_eq!(
            check("root/.ssh/deploy_key", key),
            Some(SecretKind::SshPrivateKey)
        );
        assert_eq!(check("root/.ssh/github", "ssh-ed25519 AAAA me\n"), None);
        assert_eq!(by_name_only("root/.ssh/known_hosts"), None);
        assert_eq!(by_name_only("root/.ssh/config"), None);
        assert_eq!(by_name_only("root/.ssh/deploy_key.pub"), None);
    }

    #[test]
    fn display_names_the_reason() {
        assert_eq!(SecretKind::SshPrivateKey.to_string(), "an SSH private key");
        assert_eq!(
            SecretKind::EnvFile.to_string(),
            "an environment file (.env)"
        );
    }

    #[test]
    fn read_head_regular_file_only() {
        let dir = std::env::temp_dir().join(format!("ferry-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("big.pem");
        std::fs::write(&file, vec![b'a'; HEAD_BYTES * 2]).unwrap();
        assert_eq!(read_head(&file).map(|b| b.len()), Some(HEAD_BYTES));
        let link = dir.join("link.pem");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_head(&link), None, "symlinks are not followed");
        assert_eq!(read_head(&dir), None, "directories are not files");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
