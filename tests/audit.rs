//! The audit log end to end: administrative commands leave entries,
//! `istv audit list` shows them, and `istv audit verify` names an entry
//! changed straight in the database (SQLite and PostgreSQL).

use istv_e2e::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn audit_cmd(data_dir: &Path, url: Option<&str>) -> Command {
    let mut c = istv_on(data_dir, url);
    // The OS user the entries name.
    c.env("USER", "tester");
    c
}

fn run(data_dir: &Path, url: Option<&str>, args: &[&str]) -> std::process::Output {
    audit_cmd(data_dir, url).args(args).output().unwrap()
}

fn ok(data_dir: &Path, url: Option<&str>, args: &[&str]) -> String {
    let o = run(data_dir, url, args);
    assert!(o.status.success(), "istv {args:?}: {}", stderr(&o));
    stdout(&o)
}

fn listed(data_dir: &Path, url: Option<&str>, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "list", "--json"];
    args.extend_from_slice(extra);
    let out = ok(data_dir, url, &args);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Runs the journey on the store; `tamper` runs SQL on it directly.
fn journey(data_dir: &Path, url: Option<&str>, tamper: impl Fn(&str)) {
    ok(
        data_dir,
        url,
        &["orgs", "add", "VRU", "--name", "Violence Reduction Unit"],
    );
    let password = "a password of the test, long enough";
    let mut add = audit_cmd(data_dir, url);
    add.args([
        "users",
        "add",
        "ana",
        "--org",
        "VRU",
        "--role",
        "analyst",
        "--password-stdin",
    ]);
    add.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = add.spawn().unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let token = ok(
        data_dir,
        url,
        &["users", "token", "ana", "--name", "laptop"],
    );
    let token = token.trim();
    assert_eq!(token.len(), 64);
    // A command that fails is recorded as such.
    let o = run(data_dir, url, &["users", "disable", "nobody"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let site_token = ok(
        data_dir,
        url,
        &["sites", "add", "--code", "RJ122", "--name", "King's"],
    );
    // Reading commands are not entries.
    ok(data_dir, url, &["users", "list"]);

    let entries = listed(data_dir, url, &[]);
    let summary: Vec<(u64, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "cli:tester", "orgs add", "ok"),
            (2, "cli:tester", "users add", "ok"),
            (3, "cli:tester", "users token", "ok"),
            (4, "cli:tester", "users disable", "error"),
            (5, "cli:tester", "sites add", "ok"),
        ]
    );
    let params = |i: usize| -> Value {
        serde_json::from_str(entries[i]["parameters"].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        params(2),
        serde_json::json!({"user": "ana", "name": "laptop", "expires_days": null})
    );
    assert_eq!(params(1)["name"], "ana");
    assert_eq!(params(1)["password"], "stdin");
    assert_eq!(
        params(4),
        serde_json::json!({"code": "RJ122", "name": "King's", "expected_interval_days": 35})
    );
    let all = Value::Array(entries.clone()).to_string();
    assert!(!all.contains(password) && !all.contains(token) && !all.contains(site_token.trim()));
    assert!(entries
        .iter()
        .all(|e| e["route"].is_null() && e["figures"].is_null()));

    // Filters.
    assert_eq!(listed(data_dir, url, &["--user", "cli:tester"]).len(), 5);
    assert_eq!(listed(data_dir, url, &["--user", "ana"]).len(), 0);
    assert_eq!(listed(data_dir, url, &["--since", "2000-01-01"]).len(), 5);
    assert_eq!(listed(data_dir, url, &["--since", "2999-01-01"]).len(), 0);
    let latest = listed(data_dir, url, &["--limit", "2"]);
    assert_eq!(
        latest
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [4, 5]
    );
    let bad = run(data_dir, url, &["audit", "list", "--since", "01/02/2024"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("is not a date YYYY-MM-DD"),
        "{}",
        stderr(&bad)
    );

    // The table: a header, then one line per entry.
    let table = ok(data_dir, url, &["audit", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "seq",
            "at",
            "actor",
            "org",
            "action",
            "route",
            "figures",
            "status",
            "parameters"
        ]
    );
    assert!(
        lines[4].starts_with("4 ")
            && lines[4].contains("users disable")
            && lines[4].contains("error")
    );

    let last_hash = entries[4]["hash"].as_str().unwrap();
    let o = run(data_dir, url, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!("ok: 5 entries, the chain is intact; last entry 5, hash {last_hash}")
    );

    // Entry 2 rewritten to have added a different user.
    tamper(
        r#"UPDATE audit_log SET parameters = replace(parameters, '"ana"', '"mallory"') WHERE seq = 2"#,
    );
    assert!(listed(data_dir, url, &[])[1]["parameters"]
        .as_str()
        .unwrap()
        .contains("mallory"));
    let o = run(data_dir, url, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!(
            "BROKEN: entry 2: its hash does not follow from its fields and the entry before it \
             (changed or inserted) (5 entries read; last entry 5, hash {last_hash})"
        )
    );
}

#[test]
fn verify_names_an_entry_changed_in_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("istv.db");
    journey(dir.path(), None, |sql| {
        let url = format!("sqlite://{}", db.display());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("DROP TRIGGER audit_log_no_update")
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            });
    });
}

#[test]
fn verify_names_an_entry_changed_in_the_postgres_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_pg_database("istv_e2e_audit");
    journey(dir.path(), Some(&url), |sql| {
        let o = Command::new("psql")
            .args([
                &url,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "DROP TRIGGER audit_log_no_change ON audit_log",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    });
}
