//! The audit log end to end: the real `vcm server --dev` (SQLite file, the shipped example
//! policies) and the real CLI. `vcm audit list` shows a policy denial with the policy's
//! messages and a failed authentication; `vcm audit verify` passes on the untouched log (and
//! on the exported JSON lines), and names the record when a row of the database is edited,
//! deleted or inserted behind the server's back. No credential reaches the database or the
//! export. A mutating request whose record cannot be written is refused (503) and does not
//! happen; reads go on unless `[audit] reads = "closed"`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use vcm_process::{TOKEN, Vcm, shipped, text};

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `sql` on a database file of the server (it may be running: WAL mode).
fn sql(db: &Path, statements: &[&str]) {
    let url = format!("sqlite://{}", db.display());
    let statements: Vec<String> = statements.iter().map(|s| (*s).to_owned()).collect();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            for s in statements {
                sqlx::query(sqlx::AssertSqlSafe(s))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        });
}

const BREAK_AUDIT: &str = "CREATE TRIGGER no_audit BEFORE INSERT ON audit_records \
     BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END";
const MEND_AUDIT: &str = "DROP TRIGGER no_audit";

/// `vcm audit verify`: exit code and output.
fn verify(vcm: &Vcm, extra: &[&str]) -> (i32, String) {
    let out = vcm.cli(&[&["audit", "verify"], extra].concat());
    (out.status.code().unwrap_or(-1), text(&out))
}

/// The store's and the audit log's databases (the server stopped), snapshotted into `to` with
/// `VACUUM INTO`: one consistent file each, whatever was still in their write-ahead logs.
fn snapshot_dbs(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for base in ["vcm.db", "vcm-audit.db"] {
        let into = to.join(base);
        let _ = std::fs::remove_file(&into);
        sql(
            &from.join(base),
            &[&format!("VACUUM INTO '{}'", into.display())],
        );
    }
}

/// Puts the snapshots of `kept` back in `data` (the server stopped), write-ahead logs gone.
fn restore_dbs(kept: &Path, data: &Path) {
    for base in ["vcm.db", "vcm-audit.db"] {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data.join(format!("{base}{suffix}")));
        }
        // NB: a new file, not the old one truncated: nothing still holding the old one can
        // write into the restored copy.
        let _ = std::fs::remove_file(data.join(base));
        std::fs::copy(kept.join(base), data.join(base)).unwrap();
    }
}

#[test]
fn the_cli_shows_denials_and_verifies_the_log_and_a_tampered_row_is_named() {
    // Arrange: the shipped ci-labels policy, the log exported to a file.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("audit.jsonl");
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\npaths = [{:?}]\ndata = {:?}\n\n[audit]\nexport = {:?}\n",
            shipped("ci_labels.rego"),
            shipped("data.json"),
            export.display().to_string(),
        ),
    )
    .unwrap();
    let mut vcm = Vcm::start_with_env(&[("VCM_CONFIG", &config.display().to_string())]);
    let created = json(&vcm.cli(&[
        "token", "create", "--name", "pipeline", "--role", "ci", "--team", "web", "-o", "json",
    ]));
    let ci = created["secret"].as_str().unwrap().to_owned();
    let ci_subject = format!("token:{}", created["token"]["id"].as_str().unwrap());

    // Act: a create the policy denies, a bad token, a read.
    let denied = vcm.cli_as(&ci, &["cluster", "create", "--name", "bare"]);
    assert!(!denied.status.success());
    let stranger = "vcm_0000000000000000000000000000000000000000000000000000000000000bad";
    assert!(!vcm.cli_as(stranger, &["cluster", "list"]).status.success());
    vcm.cli_ok(&["cluster", "list"]);

    // Assert: the denial with the policy's messages, the failed authentication.
    let records = wait_for(&vcm, &["--decision", "denied"], |r| {
        r.iter().any(|r| r["principal"] == ci_subject.as_str())
    });
    let denial = records
        .iter()
        .find(|r| r["principal"] == ci_subject.as_str())
        .unwrap();
    assert_eq!(denial["action"], "POST /v1/clusters");
    assert_eq!(denial["code"], "policy_denied");
    assert_eq!(denial["status"], 403);
    let said = denial["messages"].to_string();
    assert!(said.contains("ci clusters need the label repo"), "{said}");
    let failed = wait_for(&vcm, &["--decision", "unauthenticated"], |r| !r.is_empty());
    assert!(
        failed[0]["auth_error"].as_str().unwrap().contains("token"),
        "{failed:?}"
    );
    assert!(failed[0]["principal"].is_null());
    let table = vcm.cli_ok(&["audit", "list", "--principal", &ci_subject]);
    assert!(
        table.contains("POST /v1/clusters") && table.contains("denied"),
        "{table}"
    );

    // The untouched log verifies, from the server and from the export.
    let (code, said) = verify(&vcm, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("audit log intact"), "{said}");
    let report: Value = serde_json::from_str(&verify(&vcm, &["-o", "json"]).1).unwrap();
    let key = report["public_key"].as_str().unwrap().to_owned();
    vcm.sigterm();
    let export_arg = export.display().to_string();
    let (code, said) = verify(&vcm, &["--file", &export_arg, "--public-key", &key]);
    assert_eq!(code, 0, "{said}");

    // No credential in the database's files or the export.
    let mut files: Vec<_> = std::fs::read_dir(&vcm.data)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "db") || p.to_string_lossy().contains(".db-")
        })
        .collect();
    files.push(export.clone());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for secret in [TOKEN, ci.as_str(), stranger] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a credential is in {}",
                file.display()
            );
        }
    }

    // Each kind of tampering, on a copy of the untouched database, is named.
    let db = vcm.data.join("vcm-audit.db");
    let kept = dir.path().join("kept");
    snapshot_dbs(&vcm.data, &kept);
    let forged = {
        // A record appended as vcm would, linked and hashed, but without vcm's key. Read from
        // a snapshot of its own: the store's connections may still be closing when the
        // runtime ends, and must not touch the files the cases restore.
        let scratch = dir.path().join("scratch");
        snapshot_dbs(&vcm.data, &scratch);
        let url = format!("sqlite://{}", scratch.join("vcm.db").display());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                use vcm::store::{AuditFilter, SqliteStore, Store as _};
                let store = SqliteStore::open(&url).await.unwrap();
                let last = store
                    .audit_list(&AuditFilter {
                        descending: true,
                        limit: 1,
                        ..AuditFilter::default()
                    })
                    .await
                    .unwrap()
                    .remove(0);
                let mut entry = last.entry.clone();
                entry.principal = Some("token:mallory".into());
                vcm::domain::AuditRecord::link(last.seq + 1, entry, last.hash)
            })
    };
    let cases: [(&str, String, u64, &str); 3] = [
        (
            "edited",
            "UPDATE audit_records SET principal = 'token:mallory' WHERE seq = 3".into(),
            3,
            "was edited",
        ),
        (
            "deleted",
            "DELETE FROM audit_records WHERE seq = 4".into(),
            4,
            "record 4 is missing",
        ),
        (
            "inserted",
            format!(
                "INSERT INTO audit_records SELECT {seq}, time_ms, request_id, door, stage, \
                 'token:mallory', auth_error, source, action, target, decision, code, messages, \
                 status, duration_us, '{prev}', '{hash}', NULL FROM audit_records WHERE seq = {last}",
                seq = forged.seq,
                prev = forged.prev,
                hash = forged.hash,
                last = forged.seq - 1,
            ),
            forged.seq,
            "not signed",
        ),
    ];
    for (what, statement, seq, problem) in cases {
        restore_dbs(&kept, &vcm.data);
        sql(&db, &[&statement]);
        vcm.spawn();
        let (code, said) = verify(&vcm, &[]);
        assert_eq!(code, 1, "{what}: {said}");
        let named = format!("BROKEN at record {seq}:");
        assert!(said.contains(&named), "{what}: {said}");
        assert!(said.contains(problem), "{what}: {said}");
        // Later records, written by the server on top, do not hide it; a record appended
        // behind its back is noted as such once the server writes on.
        std::thread::sleep(Duration::from_millis(300));
        let (code, said) = verify(&vcm, &[]);
        assert_eq!(code, 1, "{what}: {said}");
        assert!(said.contains(&named), "{what}: {said}");
        if what == "inserted" {
            assert!(said.contains("took up the log"), "{said}");
        }
        vcm.sigterm();
    }
}

#[test]
fn a_mutating_request_is_refused_when_its_record_cannot_be_written_and_reads_as_configured() {
    // Arrange: reads fail open (the default).
    let mut vcm = Vcm::start();
    let db = vcm.data.join("vcm-audit.db");
    sql(&db, &[BREAK_AUDIT]);

    // Act
    let refused = vcm.cli(&[
        "token",
        "create",
        "--name",
        "unrecorded",
        "--role",
        "viewer",
    ]);
    let read = vcm.cli(&["cluster", "list"]);
    sql(&db, &[MEND_AUDIT]);

    // Assert: refused, and it did not happen; the read was answered.
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(said.contains("audit_unavailable"), "{said}");
    assert!(said.contains("not carried out"), "{said}");
    assert!(read.status.success(), "{}", text(&read));
    let tokens = json(&vcm.cli(&["token", "list", "-o", "json"]));
    assert!(!tokens.to_string().contains("unrecorded"), "{tokens}");
    // The refusal's own record was kept and written once the store took records again.
    let records = wait_for(&vcm, &["--action", "POST /v1/tokens"], |r| {
        r.iter().any(|r| r["status"] == 503)
    });
    assert!(records.iter().any(|r| r["code"] == "audit_unavailable"));
    let (code, said) = verify(&vcm, &[]);
    assert_eq!(code, 0, "{said}");
    vcm.sigterm();

    // Arrange: reads fail closed.
    let mut closed = Vcm::start_with_env(&[("VCM_AUDIT__READS", "closed")]);
    let db = closed.data.join("vcm-audit.db");
    sql(&db, &[BREAK_AUDIT]);
    let read = closed.cli(&["cluster", "list"]);
    sql(&db, &[MEND_AUDIT]);
    let after = closed.cli(&["cluster", "list"]);
    assert!(!read.status.success());
    assert!(text(&read).contains("audit_unavailable"), "{}", text(&read));
    assert!(after.status.success(), "{}", text(&after));
    closed.sigterm();
}

/// `vcm audit list -o json <filters>` until `done` holds of the records (10 s at most).
fn wait_for(vcm: &Vcm, filters: &[&str], done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = vcm.cli(&[&["audit", "list", "-o", "json"], filters].concat());
        let records: Vec<Value> = serde_json::from_value(json(&out)).unwrap();
        if done(&records) {
            return records;
        }
        assert!(Instant::now() < deadline, "not recorded: {records:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
