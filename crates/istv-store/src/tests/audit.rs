//! The audit log on both databases: appends, filters, the chain and what
//! verification finds when entries are changed or deleted behind the
//! store's back.

use super::*;
use crate::{AuditEntry, AuditFilter, BreakKind, Broken};
use sha2::{Digest, Sha256};

fn entry(actor: &str, action: &str, figures: Option<u64>, status: &str) -> AuditEntry {
    AuditEntry {
        actor: actor.into(),
        organisation: (actor != "anonymous").then(|| "VRU".into()),
        action: action.into(),
        route: Some("/api/v1/aggregates".into()),
        parameters: Some("group_by=month".into()),
        figures,
        status: status.into(),
    }
}

/// Four entries: ana, bob, ana, anonymous.
fn four() -> Vec<AuditEntry> {
    vec![
        entry("ana", "query", Some(12), "200"),
        entry("bob", "download", Some(3), "200"),
        entry("ana", "sign_out", None, "204"),
        AuditEntry {
            route: Some("/api/v1/session".into()),
            parameters: Some(r#"{"user":"carol"}"#.into()),
            ..entry("anonymous", "sign_in_failed", None, "401")
        },
    ]
}

/// The documented chain encoding, written out again here.
fn by_hand(prev: &[u8; 32], seq: u64, at: &str, e: &AuditEntry) -> [u8; 32] {
    let field = |h: &mut Sha256, v: Option<&str>| match v {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            h.update((s.len() as u32).to_be_bytes());
            h.update(s.as_bytes());
        }
    };
    let mut h = Sha256::new();
    h.update(prev);
    field(&mut h, Some(&seq.to_string()));
    field(&mut h, Some(at));
    field(&mut h, Some(&e.actor));
    field(&mut h, e.organisation.as_deref());
    field(&mut h, Some(&e.action));
    field(&mut h, e.route.as_deref());
    field(&mut h, e.parameters.as_deref());
    field(&mut h, e.figures.map(|n| n.to_string()).as_deref());
    field(&mut h, Some(&e.status));
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn append_four(store: &Store) {
    for (i, e) in four().iter().enumerate() {
        assert_eq!(store.append_audit(e).await.unwrap(), i as u64 + 1);
    }
}

fn seqs(records: &[crate::AuditRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// Runs `sql` on the store's database with the append-only triggers
/// dropped first, as a database administrator could.
async fn tamper(store: &Store, sql: &str) {
    let drops: &[&str] = match store.backend() {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Backend::Postgres => &["DROP TRIGGER audit_log_no_change ON audit_log"],
    };
    on_db!(&store.db, pool => {
        for d in drops {
            sqlx::query(d).execute(pool).await.unwrap();
        }
        sqlx::query(sql).execute(pool).await.unwrap();
    });
}

async fn append_list_filter(store: Store) {
    assert!(store
        .list_audit(&AuditFilter::default())
        .await
        .unwrap()
        .is_empty());
    append_four(&store).await;
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4]);
    let entries: Vec<AuditEntry> = all.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(entries, four());
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
    let now = chrono::Utc::now();
    assert!(all.iter().all(|r| (now - r.at).num_seconds() < 60));

    let ana = AuditFilter {
        user: Some("ana".into()),
        ..AuditFilter::default()
    };
    let listed = store.list_audit(&ana).await.unwrap();
    assert_eq!(seqs(&listed), [1, 3]);
    assert_eq!(listed[1].entry.action, "sign_out");

    let latest_two = AuditFilter {
        limit: Some(2),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store.list_audit(&latest_two).await.unwrap()), [3, 4]);

    let today = now.date_naive();
    let since = |d| AuditFilter {
        since: Some(d),
        ..AuditFilter::default()
    };
    assert_eq!(
        seqs(&store.list_audit(&since(today)).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert!(store
        .list_audit(&since(today.succ_opt().unwrap()))
        .await
        .unwrap()
        .is_empty());
}

async fn verify_passes_and_hashes_follow_the_encoding(store: Store) {
    let empty = store.verify_audit().await.unwrap();
    assert_eq!((empty.entries, empty.last.clone()), (0, None));
    assert!(empty.is_ok());
    append_four(&store).await;

    let raw: Vec<crate::audit::AuditRow> = on_db!(&store.db, pool => {
        sqlx::query_as(
            "SELECT seq, at, actor, organisation, action, route, parameters, figures, status, hash \
             FROM audit_log ORDER BY seq",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(raw.len(), 4);
    let mut prev = [0u8; 32];
    for row in &raw {
        let (seq, at, stored) = (row.0, &row.1, &row.9);
        let e = crate::audit::entry_of(row);
        let digest = by_hand(&prev, seq as u64, at, &e);
        assert_eq!(*stored, hex(&digest), "entry {seq}");
        prev = digest;
    }

    let report = store.verify_audit().await.unwrap();
    let listed = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(report.entries, 4);
    assert_eq!(report.last, Some((4, listed[3].hash.clone())));
    assert_eq!(report.broken, None);
}

async fn the_log_refuses_updates_and_deletes(store: Store) {
    append_four(&store).await;
    on_db!(&store.db, pool => {
        for sql in [
            "UPDATE audit_log SET figures = 0 WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 4",
        ] {
            let err = sqlx::query(sql).execute(pool).await.unwrap_err();
            assert!(err.to_string().contains("audit_log is append-only"), "{err}");
        }
    });
    assert_eq!(store.verify_audit().await.unwrap().entries, 4);
}

async fn a_changed_entry_is_named(store: Store) {
    append_four(&store).await;
    tamper(&store, "UPDATE audit_log SET figures = 99 WHERE seq = 2").await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.entries, 4);
    assert_eq!(
        report.broken,
        Some(Broken {
            seq: 2,
            kind: BreakKind::Mismatch
        })
    );
    assert!(!report.is_ok());
}

async fn a_changed_entry_with_its_hash_recomputed_breaks_the_next(store: Store) {
    append_four(&store).await;
    // Entry 3 rewritten to "ana" having done nothing at all, with a hash
    // that is right for its new fields: entry 4 no longer follows from it.
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    let mut forged = all[2].entry.clone();
    forged.action = "nothing".into();
    let at: (String,) = on_db!(&store.db, pool => {
        sqlx::query_as("SELECT at FROM audit_log WHERE seq = 3").fetch_one(pool).await.unwrap()
    });
    let prev: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&all[1].hash[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let hash = hex(&by_hand(&prev.try_into().unwrap(), 3, &at.0, &forged));
    tamper(
        &store,
        &format!("UPDATE audit_log SET action = 'nothing', hash = '{hash}' WHERE seq = 3"),
    )
    .await;
    assert_eq!(
        store.verify_audit().await.unwrap().broken,
        Some(Broken {
            seq: 4,
            kind: BreakKind::Mismatch
        })
    );
}

async fn a_deleted_entry_is_named(store: Store) {
    append_four(&store).await;
    tamper(&store, "DELETE FROM audit_log WHERE seq = 2").await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.entries, 3);
    assert_eq!(
        report.broken,
        Some(Broken {
            seq: 3,
            kind: BreakKind::Missing { from: 2 }
        })
    );
    assert_eq!(
        report.broken.unwrap().to_string(),
        "entry 3: entry 2 before it is missing (deleted)"
    );
}

async fn an_inserted_entry_is_named(store: Store) {
    append_four(&store).await;
    let fake = "0".repeat(64);
    tamper(
        &store,
        &format!(
            "INSERT INTO audit_log (seq, at, actor, action, status, hash) \
             VALUES (5, '2099-01-01T00:00:00.000000Z', 'ana', 'query', '200', '{fake}')"
        ),
    )
    .await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.entries, report.last.clone()), (5, Some((5, fake))));
    assert_eq!(
        report.broken,
        Some(Broken {
            seq: 5,
            kind: BreakKind::Mismatch
        })
    );
}

async fn concurrent_appends_make_one_chain(store: Store) {
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_audit(&entry(&format!("user{}", i % 3), "query", Some(i), "200"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=24).collect::<Vec<u64>>());
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.entries, report.broken), (24, None));
    let user1 = AuditFilter {
        user: Some("user1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(store.list_audit(&user1).await.unwrap().len(), 8);
}

on_both!(
    append_list_filter,
    verify_passes_and_hashes_follow_the_encoding,
    the_log_refuses_updates_and_deletes,
    a_changed_entry_is_named,
    a_changed_entry_with_its_hash_recomputed_breaks_the_next,
    a_deleted_entry_is_named,
    an_inserted_entry_is_named,
    concurrent_appends_make_one_chain,
);
