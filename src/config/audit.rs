//! `[audit]`: where the audit log goes besides the store, how reads behave when it cannot be
//! written, how long records are kept, and the key that signs them (see `docs/AUDIT.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a read does when its audit record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Answer anyway; the record is kept in memory and written when the store takes it again.
    #[default]
    Open,
    /// Answer 503 `audit_unavailable` instead of the data.
    Closed,
}

/// The `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Record requests at all. `false` is for benchmarks and throwaway servers: the server
    /// warns at start, and nothing is recorded.
    pub enabled: bool,
    /// What reads (GET, HEAD) do when their record cannot be written. Mutating requests always
    /// fail closed: they are refused (503) before they run.
    pub reads: FailMode,
    /// Also write every record, once stored, as a JSON line: `"stdout"` or a file path (opened
    /// for appending). Empty: the store only.
    pub export: String,
    /// How long records are kept: `"<n>d"`, `"<n>h"`, `"<n>m"` or `"forever"`. Older ones
    /// are purged hourly and replaced by a signed checkpoint, so the rest still verifies.
    pub retention: String,
    /// The Ed25519 key (PKCS#8, PEM) that signs records and checkpoints. Generated on first
    /// start when missing; default `<data_dir>/audit-signing.key`.
    pub signing_key: Option<PathBuf>,
}

/// Where stored records are exported to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// The server's standard output (logs go to standard error).
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

// === impl AuditConfig ===

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            reads: FailMode::Open,
            export: String::new(),
            retention: "365d".into(),
            signing_key: None,
        }
    }
}

impl AuditConfig {
    /// The retention period; `None` keeps every record. The error names the key.
    pub fn retention(&self) -> Result<Option<Duration>, String> {
        let s = self.retention.trim();
        if s == "forever" {
            return Ok(None);
        }
        let bad = || {
            format!(
                "audit.retention = {s:?}: write a whole number and a unit (\"90d\", \"12h\", \
                 \"30m\") or \"forever\""
            )
        };
        let unit = s.chars().last().ok_or_else(bad)?;
        let secs = match unit {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(format!(
                "audit.retention = {s:?}: at least one minute, or \"forever\""
            ));
        }
        Ok(Some(Duration::from_secs(n.saturating_mul(secs))))
    }

    /// Where records are exported to, if anywhere.
    pub fn export(&self) -> Option<Export> {
        match self.export.trim() {
            "" => None,
            "stdout" | "-" => Some(Export::Stdout),
            path => Some(Export::File(PathBuf::from(path))),
        }
    }

    /// The signing key's file.
    pub fn signing_key(&self, data_dir: &Path) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| data_dir.join("audit-signing.key"))
    }

    /// Checks the values on their own; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.retention()?;
        if self
            .signing_key
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err("audit.signing_key is empty: give a file, or leave it out".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn retention_reads_days_hours_minutes_and_forever() {
        let with = |s: &str| AuditConfig {
            retention: s.into(),
            ..AuditConfig::default()
        };
        assert_eq!(
            with("90d").retention().unwrap(),
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(
            with("2h").retention().unwrap(),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(with("forever").retention().unwrap(), None);
        for bad in ["", "0d", "d", "5", "5w", "-1d", "1.5d"] {
            let err = with(bad).retention().unwrap_err();
            assert!(err.starts_with("audit.retention"), "{bad}: {err}");
        }
    }

    #[test]
    fn export_names_stdout_or_a_file() {
        let with = |s: &str| AuditConfig {
            export: s.into(),
            ..AuditConfig::default()
        };
        assert_eq!(with("").export(), None);
        assert_eq!(with("stdout").export(), Some(Export::Stdout));
        assert_eq!(
            with("/var/log/vcm/audit.jsonl").export(),
            Some(Export::File("/var/log/vcm/audit.jsonl".into()))
        );
    }
}
