//! The public tier's releases on both databases: stored once, read back
//! byte for byte, never replaced, changed or deleted.

use super::*;
use crate::{PublicRelease, PublicReleaseInfo};

fn release(month: &str, epsilon: f64, count: u64) -> PublicRelease {
    PublicRelease {
        month: month.into(),
        epsilon,
        mechanism: "discrete_laplace".into(),
        parameters: r#"{"scale":1.0,"sensitivity":1}"#.into(),
        created_at: "2024-04-08T03:00:00Z".into(),
        json: format!(r#"{{"month":"{month}","rows":[{{"count":{count}}}]}}"#),
        csv: format!("month,count\n{month},{count}\n"),
    }
}

async fn a_release_is_stored_once_and_read_back_exactly(store: Store) {
    assert_eq!(store.public_release("2024-03").await.unwrap(), None);
    assert_eq!(store.public_releases().await.unwrap(), []);
    let first = release("2024-03", 0.5, 7);
    assert!(store.insert_public_release(&first).await.unwrap());
    // A second release of the month is not stored; the first stays.
    assert!(!store
        .insert_public_release(&release("2024-03", 2.0, 9))
        .await
        .unwrap());
    let stored = store.public_release("2024-03").await.unwrap().unwrap();
    assert_eq!(stored, first);
    assert_eq!(stored.json, r#"{"month":"2024-03","rows":[{"count":7}]}"#);
    assert_eq!(stored.csv, "month,count\n2024-03,7\n");
    assert!(store
        .insert_public_release(&release("2024-01", 1.0, 3))
        .await
        .unwrap());
    let info = |month: &str, epsilon| PublicReleaseInfo {
        month: month.into(),
        epsilon,
        mechanism: "discrete_laplace".into(),
        created_at: "2024-04-08T03:00:00Z".into(),
    };
    assert_eq!(
        store.public_releases().await.unwrap(),
        [info("2024-01", 1.0), info("2024-03", 0.5)]
    );
}

async fn stored_releases_cannot_be_changed_or_deleted(store: Store) {
    assert!(store
        .insert_public_release(&release("2024-03", 1.0, 7))
        .await
        .unwrap());
    for sql in [
        "UPDATE public_releases SET rows_csv = 'x'",
        "DELETE FROM public_releases",
    ] {
        let err = on_db!(&store.db, pool => sqlx::query(sql).execute(pool).await.unwrap_err());
        assert!(
            err.to_string()
                .contains("public releases are never recomputed"),
            "{sql}: {err}"
        );
    }
    assert_eq!(
        store.public_release("2024-03").await.unwrap(),
        Some(release("2024-03", 1.0, 7))
    );
}

on_both!(
    a_release_is_stored_once_and_read_back_exactly,
    stored_releases_cannot_be_changed_or_deleted,
);
